package mongoready

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// logLine is the part of a mongod logv2 JSON line that FatalLine reads:
// {"t":…,"s":"E","c":"NETWORK","id":23024,"ctx":…,"msg":…,"attr":{"error":…}}.
type logLine struct {
	Severity string `json:"s"`
	ID       int    `json:"id"`
	Msg      string `json:"msg"`
	Attr     struct {
		Error json.RawMessage `json:"error"`
	} `json:"attr"`
}

// errorText renders attr.error, which is a string for some ids and a
// {code, codeName, errmsg} document for others.
func (l logLine) errorText() string {
	if len(l.Attr.Error) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(l.Attr.Error, &s) == nil {
		return s
	}
	var d struct {
		CodeName string `json:"codeName"`
		Errmsg   string `json:"errmsg"`
	}
	if json.Unmarshal(l.Attr.Error, &d) == nil {
		return strings.TrimSpace(d.CodeName + ": " + d.Errmsg)
	}
	return string(l.Attr.Error)
}

// ErrFatal is wrapped by every FatalLine error.
var ErrFatal = errors.New("mongod cannot start")

// FatalLine recognises a line of mongod output that means it cannot start,
// for supervise.Process.FatalLine, so the runtime fails at once with the
// reason instead of waiting out the readiness timeout. Lines it knows:
//   - listener failures (ids 23024, 20568; "Address already in use");
//   - DBPathInUse (another mongod holds the data dir) and NonExistentPath;
//   - any fatal-severity ("s":"F") line;
//   - the dynamic loader's "error while loading shared libraries" (Linux)
//     and dyld's "Library not loaded" (macOS), printed before any JSON.
func FatalLine(line string) error {
	switch {
	case strings.Contains(line, "error while loading shared libraries"),
		strings.Contains(line, "Library not loaded"):
		return fmt.Errorf("%w: a shared library is missing (%s); reinstall the runtime payload or install the library", ErrFatal, strings.TrimSpace(line))
	}
	if !strings.HasPrefix(line, "{") {
		return nil
	}
	var l logLine
	if json.Unmarshal([]byte(line), &l) != nil {
		return nil
	}
	text := l.errorText()
	switch {
	case strings.Contains(text, "DBPathInUse") || strings.Contains(line, "DBPathInUse"):
		return fmt.Errorf("%w: its data directory is in use by another mongod (DBPathInUse); stop the other instance (`second stop`, or find it with `ps aux | grep mongod`)", ErrFatal)
	case strings.Contains(text, "NonExistentPath"):
		return fmt.Errorf("%w: its data directory does not exist (%s)", ErrFatal, text)
	case l.ID == 23024 || l.ID == 20568 || strings.Contains(text, "Address already in use"):
		return fmt.Errorf("%w: it cannot listen on its port: %s; another program uses the port", ErrFatal, orMsg(text, l.Msg))
	case l.Severity == "F":
		return fmt.Errorf("%w: fatal error %d: %s", ErrFatal, l.ID, orMsg(text, l.Msg))
	}
	return nil
}

func orMsg(text, msg string) string {
	if text != "" {
		return text
	}
	return msg
}
