package pack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// PackageJSON is a package.json read from a template with its key order
// kept, so stamping name and version leaves the rest of the file as written.
type PackageJSON struct {
	keys   []string
	values map[string]json.RawMessage
}

// ReadPackageJSON loads a package.json template.
func ReadPackageJSON(path string) (*PackageJSON, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read package.json template: %w", err)
	}
	p, err := ParsePackageJSON(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePackageJSON decodes a JSON object keeping its top-level key order.
func ParsePackageJSON(b []byte) (*PackageJSON, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("package.json is not a JSON object")
	}
	p := &PackageJSON{values: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("field %q: %w", key, err)
		}
		if _, dup := p.values[key]; !dup {
			p.keys = append(p.keys, key)
		}
		p.values[key] = raw
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return p, nil
}

// Set replaces a field (keeping its position) or appends it.
func (p *PackageJSON) Set(key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("package.json field %q: %w", key, err)
	}
	if _, ok := p.values[key]; !ok {
		p.keys = append(p.keys, key)
	}
	p.values[key] = raw
	return nil
}

// Delete removes a field if present.
func (p *PackageJSON) Delete(key string) {
	if _, ok := p.values[key]; !ok {
		return
	}
	delete(p.values, key)
	for i, k := range p.keys {
		if k == key {
			p.keys = append(p.keys[:i], p.keys[i+1:]...)
			break
		}
	}
}

// Get decodes a field into v; it reports whether the field exists.
func (p *PackageJSON) Get(key string, v any) (bool, error) {
	raw, ok := p.values[key]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

// Marshal renders the object with 2-space indentation and a trailing
// newline, the way npm writes package.json.
func (p *PackageJSON) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString("{")
	for i, k := range p.keys {
		if i > 0 {
			buf.WriteString(",")
		}
		kb, _ := json.Marshal(k)
		buf.WriteString("\n  ")
		buf.Write(kb)
		buf.WriteString(": ")
		var v bytes.Buffer
		if err := json.Indent(&v, p.values[k], "  ", "  "); err != nil {
			return nil, fmt.Errorf("package.json field %q: %w", k, err)
		}
		buf.Write(v.Bytes())
	}
	if len(p.keys) > 0 {
		buf.WriteString("\n")
	}
	buf.WriteString("}\n")
	return buf.Bytes(), nil
}
