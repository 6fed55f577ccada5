// Package filetree copies and normalises directory trees: copies that skip
// what must not be carried, take or refuse symbolic links, and keep either the
// source's permission bits or only its executable bit; symbolic links replaced
// by what they point to (npm drops links); and fixed mtimes and modes so two
// builds of the same commit are byte-identical.
package filetree

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LinkPolicy says what Copy does with a symbolic link in the source tree.
type LinkPolicy int

const (
	// KeepLinks copies a link as a link with the same target; Dereference
	// can resolve them afterwards.
	KeepLinks LinkPolicy = iota
	// RefuseLinks fails on a link, naming it: for trees that must already
	// hold only regular files and directories.
	RefuseLinks
)

// ModePolicy says which permission bits Copy gives the files it writes.
type ModePolicy int

const (
	// ExecBitModes writes 0755 if the source has any execute bit, else 0644,
	// whatever the umask.
	ExecBitModes ModePolicy = iota
	// SourceModes writes the source's permission bits as the process umask
	// allows (like cp without -p).
	SourceModes
)

// CopyOptions tunes Copy. The zero value keeps links and only the
// executable bit.
type CopyOptions struct {
	// Skip reports whether a path (slash-separated, relative to the source
	// root) is left out; a skipped directory is not descended into.
	Skip func(rel string, d fs.DirEntry) bool
	// Symlinks says whether links are kept or refused.
	Symlinks LinkPolicy
	// Modes says which permission bits copied files get.
	Modes ModePolicy
}

// Copy copies the tree at src into dst (created; existing files are
// overwritten, others left alone). Anything other than a regular file,
// directory or (with KeepLinks) symbolic link is an error naming it.
func Copy(src, dst string, o CopyOptions) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("copy %s: %w", src, err)
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel != "." && o.Skip != nil && o.Skip(filepath.ToSlash(rel), d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("copy %s: %w", p, err)
			}
			if o.Symlinks == RefuseLinks {
				return fmt.Errorf("copy %s: not a regular file or directory (symbolic link to %s): this tree must not hold links; resolve them before copying", p, link)
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(p, target, o.Modes)
		default:
			return fmt.Errorf("copy %s: not a regular file or directory (%s)", p, d.Type())
		}
	})
}

// CopyFile copies one regular file, keeping only its executable bit.
func CopyFile(src, dst string) error {
	return copyFile(src, dst, ExecBitModes)
}

func copyFile(src, dst string, modes ModePolicy) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	mode := fileMode(st.Mode())
	if modes == SourceModes {
		mode = st.Mode().Perm()
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	if modes == SourceModes {
		return nil // the umask applies, as it does for cp
	}
	return os.Chmod(dst, mode)
}

func fileMode(m fs.FileMode) fs.FileMode {
	if m&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

// Dereference replaces every symbolic link under root with a copy of what it
// points to. A link whose target lies outside root, dangles, or loops is an
// error naming the link: the tree must be self-contained.
func Dereference(root string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return fmt.Errorf("resolve links in %s: %w", root, err)
	}
	var links []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			links = append(links, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("resolve links in %s: %w", root, err)
	}
	for _, l := range links {
		if err := derefOne(realRoot, root, l, nil); err != nil {
			return err
		}
	}
	return nil
}

// derefOne replaces the link at p; stack holds the real paths of directories
// being copied so a link to an ancestor is caught instead of recursing forever.
func derefOne(realRoot, root, p string, stack []string) error {
	rel, _ := filepath.Rel(root, p)
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return fmt.Errorf("symbolic link %s: target missing or unreadable: %w", rel, err)
	}
	if !within(realRoot, target) {
		return fmt.Errorf("symbolic link %s points outside the tree (to %s): refusing to package it; copy the file into the app instead", rel, target)
	}
	st, err := os.Stat(target)
	if err != nil {
		return fmt.Errorf("symbolic link %s: %w", rel, err)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("replace symbolic link %s: %w", rel, err)
	}
	if !st.IsDir() {
		return CopyFile(target, p)
	}
	for _, s := range stack {
		if s == target {
			return fmt.Errorf("symbolic link %s makes a loop (to %s)", rel, target)
		}
	}
	stack = append(stack, target)
	return copyResolved(realRoot, root, target, p, stack)
}

// copyResolved copies directory src to dst, resolving links inside it.
func copyResolved(realRoot, root, src, dst string, stack []string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(s)
			if err != nil {
				return err
			}
			if !filepath.IsAbs(link) {
				// Resolve relative to the link's original place, not its copy.
				link = filepath.Join(src, link)
			}
			if err := os.Symlink(link, d); err != nil {
				return err
			}
			if err := derefOne(realRoot, root, d, stack); err != nil {
				return err
			}
		case e.IsDir():
			if err := copyResolved(realRoot, root, s, d, stack); err != nil {
				return err
			}
		case e.Type().IsRegular():
			if err := CopyFile(s, d); err != nil {
				return err
			}
		default:
			return fmt.Errorf("copy %s: unsupported file type %s", s, e.Type())
		}
	}
	return nil
}

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// Normalize sets every file's and directory's mtime to t and modes to
// 0755/0644, so an archive of the tree does not depend on when or by whom
// it was built. A zero t leaves mtimes alone.
func Normalize(root string, t time.Time) error {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return errors.New("normalize " + p + ": symbolic link left in the tree")
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return os.Chmod(p, 0o755)
		}
		if err := os.Chmod(p, fileMode(info.Mode())); err != nil {
			return err
		}
		if !t.IsZero() {
			return os.Chtimes(p, t, t)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("normalize %s: %w", root, err)
	}
	if t.IsZero() {
		return nil
	}
	// Directories last, deepest first: writing into a directory bumps its mtime.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirs[i], t, t); err != nil {
			return fmt.Errorf("normalize %s: %w", root, err)
		}
	}
	return nil
}
