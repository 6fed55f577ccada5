package natives

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressBar(t *testing.T) {
	tests := []struct {
		name  string
		tty   bool
		total int64
		want  []string
	}{
		{"plain lines with a size", false, 100, []string{"x 1: 0% (0.0 MiB of 0.0 MiB)\n", "x 1: 50%", "x 1: 100%", "x 1: done"}},
		{"plain lines without a size", false, -1, []string{"x 1: 0.0 MiB\n", "x 1: done"}},
		{"terminal bar", true, 100, []string{"\rx 1 [", "] 100%", " done in "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			p := &progressBar{w: &buf, tty: tt.tty, label: "x 1", total: tt.total, lastStep: -1}
			p.draw(true)
			for i := 0; i < 10; i++ {
				p.Write(make([]byte, 10))
			}
			p.finish()
			out := buf.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%q", w, out)
				}
			}
			if !tt.tty && strings.Contains(out, "\r") {
				t.Error("carriage return in plain output")
			}
			if !tt.tty && tt.total > 0 && strings.Count(out, "\n") != 12 {
				t.Errorf("want 11 step lines + done, got:\n%s", out)
			}
		})
	}
}
