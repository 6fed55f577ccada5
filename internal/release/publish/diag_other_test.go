//go:build !linux

package publish_test

import "errors"

func socketDiag() error { return errors.New("not Linux") }
