package binarycheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/second-inc/second-release/internal/testsupport/craft"
)

// TestIdentifySniffer: the one sniffer tells a universal Mach-O (small
// architecture count after 0xCAFEBABE) from a Java class file (minor and
// major version there, major ≥ 45), and ignores short files and text.
func TestIdentifySniffer(t *testing.T) {
	fat := craft.Fat(map[uint32][]byte{
		craft.CPUARM64: craft.Library(craft.CPUARM64),
		craft.CPUAMD64: craft.Library(craft.CPUAMD64),
	})
	cases := []struct {
		name, content string
		ok            bool
		want          string // Binary.String(), or an error substring when wantErr
		wantErr       bool
	}{
		{name: "universal", content: string(fat), ok: true, want: "macho darwin/amd64+arm64"},
		{name: "thin", content: string(craft.Library(craft.CPUARM64)), ok: true, want: "macho darwin/arm64"},
		{name: "java-8-class", content: "\xca\xfe\xba\xbe\x00\x00\x00\x34rest of a class file"},
		{name: "java-1.1-class", content: "\xca\xfe\xba\xbe\x00\x03\x00\x2drest"},
		{name: "java-preview-class", content: "\xca\xfe\xba\xbe\xff\xff\x00\x41rest"},
		{name: "truncated-magic", content: "\xca\xfe\xba"},
		{name: "magic-only", content: "\xca\xfe\xba\xbe"},
		{name: "mz-text", content: "MZ is not a PE header"},
		{name: "text", content: "hello"},
		{name: "empty", content: ""},
		// Announces universal Mach-O (count 2) but has no architecture table.
		{name: "broken-universal", content: "\xca\xfe\xba\xbe\x00\x00\x00\x02", wantErr: true, want: "universal Mach-O"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if err := os.WriteFile(p, []byte(c.content), 0o644); err != nil {
				t.Fatal(err)
			}
			b, ok, err := Identify(p)
			if c.wantErr {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("Identify = %v, %v, %v; want an error naming %q", b, ok, err, c.want)
				}
				return
			}
			if err != nil || ok != c.ok {
				t.Fatalf("Identify = %v, ok=%v, err=%v; want ok=%v", b, ok, err, c.ok)
			}
			if ok && b.String() != c.want {
				t.Errorf("Identify = %s, want %s", b, c.want)
			}
		})
	}
}
