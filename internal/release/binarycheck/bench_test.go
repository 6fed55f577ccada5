package binarycheck

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/second-inc/second-release/internal/release/platform"
	"github.com/second-inc/second-release/internal/testsupport/craft"
)

// BenchmarkCheckTree: a payload-sized tree (node_modules-like: 5,000 small
// text files, 20 Mach-O files) checked in full.
func BenchmarkCheckTree(b *testing.B) {
	root := b.TempDir()
	for i := 0; i < 5000; i++ {
		p := filepath.Join(root, "dist/web/node_modules", fmt.Sprintf("pkg%d/index.js", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("module.exports = 1\n"), 0o644)
	}
	for i := 0; i < 20; i++ {
		p := filepath.Join(root, "dist/web/node_modules", fmt.Sprintf("pkg%d/addon.node", i))
		os.WriteFile(p, craft.Library(craft.CPUARM64, craft.Dylib("/usr/lib/libSystem.B.dylib"), craft.BuildVersion(craft.Version(11, 0))), 0o755)
	}
	p, err := platform.Parse("darwin-arm64")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		vs, err := Check(root, PayloadOptions(p, Floors{MacOS: "14.0"}, nil))
		if err != nil || len(vs) != 0 {
			b.Fatal(err, vs)
		}
	}
}
