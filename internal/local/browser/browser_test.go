package browser

import (
	"reflect"
	"testing"
)

func TestCommandHonoursBROWSER(t *testing.T) {
	tests := []struct {
		env  string
		want []string
	}{
		{"firefox", []string{"firefox", "http://x"}},
		{"w3m -o foo:lynx", []string{"w3m", "-o", "foo", "http://x"}},
	}
	for _, tt := range tests {
		got, err := Command("http://x", Options{Getenv: func(string) string { return tt.env }})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("BROWSER=%q: got %v, want %v", tt.env, got, tt.want)
		}
	}
}
