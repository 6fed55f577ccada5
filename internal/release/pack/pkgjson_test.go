package pack

import "testing"

func TestPackageJSONKeepsOrder(t *testing.T) {
	p, err := ParsePackageJSON([]byte(`{"name":"t","version":"0.0.0","os":["darwin"],"bin":{"a":"b"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Set("version", "1.2.3"); err != nil {
		t.Fatal(err)
	}
	if err := p.Set("files", []string{"bin/"}); err != nil {
		t.Fatal(err)
	}
	p.Delete("os")
	got, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"name\": \"t\",\n  \"version\": \"1.2.3\",\n  \"bin\": {\n    \"a\": \"b\"\n  },\n  \"files\": [\n    \"bin/\"\n  ]\n}\n"
	if string(got) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", got, want)
	}
	var v string
	if ok, err := p.Get("version", &v); !ok || err != nil || v != "1.2.3" {
		t.Errorf("Get(version) = %q %v %v", v, ok, err)
	}
	for _, bad := range []string{`[]`, `{"a":}`, `nope`} {
		if _, err := ParsePackageJSON([]byte(bad)); err == nil {
			t.Errorf("ParsePackageJSON(%s) succeeded", bad)
		}
	}
}
