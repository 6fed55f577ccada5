package npmconf

import (
	"encoding/base64"
	"regexp"
)

// userInfoRe matches the user-info part of a URL ("scheme://user:pass@").
var userInfoRe = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@`)

// authKeyRe matches "...:_authToken=VALUE" style settings printed by mistake.
var authKeyRe = regexp.MustCompile(`(:_authToken|:_auth|:_password)(\s*=\s*|\s+)\S+`)

// Redact removes URL user-info and npmrc-style credential values from s.
// It does not know the configured secrets; prefer (*Config).Redact when a
// Config is at hand.
func Redact(s string) string {
	s = userInfoRe.ReplaceAllString(s, "${1}***@")
	return authKeyRe.ReplaceAllString(s, "${1}${2}***")
}

func decodeBase64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}

func encodeBase64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
