package extract

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkExtractMember: pull one 32 MiB member (mongod-sized) out of a
// tar.gz that also holds another 32 MiB file, as Materialize does.
func BenchmarkExtractMember(b *testing.B) {
	big := bytes.Repeat([]byte("mongod binary bytes 0123456789\n"), (32<<20)/31)
	data := tgz(b, []entry{exe("m/bin/mongod", string(big)), exe("m/bin/mongos", string(big))})
	b.SetBytes(int64(len(big)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dest := filepath.Join(b.TempDir(), "rt")
		if _, err := Reader(context.Background(), bytes.NewReader(data), Options{Dest: dest, Members: map[string]string{"m/bin/mongod": "bin/mongod"}}); err != nil {
			b.Fatal(err)
		}
	}
}
