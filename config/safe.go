package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/warren-p2p/warren/internal/repofile"
)

// ErrUnsafeRepo is matched (errors.Is) by every refusal of a repo, or of a
// file in it, that another local user could have planted or could change:
// owned by someone else, writable by group or others, a symbolic link, or
// not a regular file. The error says what is wrong and how to fix it.
// The checks live in internal/repofile, which package client shares.
var ErrUnsafeRepo = repofile.ErrUnsafeRepo

// UnsafeRepoError is the error behind ErrUnsafeRepo.
type UnsafeRepoError = repofile.UnsafeRepoError

// repoFiles are the files checked whenever a repo is opened.
var repoFiles = []string{ConfigFile, KeyFile, TokenFile, TunnelsFile, LockFile, APIFile}

func checkDir(dir string) error { return repofile.CheckDir(dir) }

func checkFile(dir, name string) error { return repofile.CheckFile(dir, name) }

func checkFileInfo(dir, name string, st fs.FileInfo) error {
	return repofile.CheckFileInfo(dir, name, st)
}

// CheckRepo refuses a repo directory, or any of its files, that another
// local user could have planted or could change; errors match ErrUnsafeRepo.
// Open, Init, Lock, ReadEndpoint and ReadToken call it.
func CheckRepo(dir string) error {
	if err := checkDir(dir); err != nil {
		return err
	}
	for _, name := range repoFiles {
		if err := checkFile(dir, name); err != nil {
			return err
		}
	}
	return nil
}

// readRepoFile reads one file of the repo without following a symbolic
// link, after checking (on the open descriptor) who owns it and its mode.
// A file larger than limit is an error.
func readRepoFile(dir, name string, limit int64) ([]byte, error) {
	return repofile.Read(dir, name, limit)
}

func readLimited(f *os.File, path string, limit int64) ([]byte, error) {
	return repofile.ReadLimited(f, path, limit)
}

// ReadFileNoFollow reads path, refusing a symbolic link (in its last
// element), anything but a regular file, and a file larger than limit bytes.
// For state files of the repo: tunnel's tunnels.json should be read with it.
func ReadFileNoFollow(path string, limit int64) ([]byte, error) {
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, &UnsafeRepoError{Dir: filepath.Dir(path), Path: path,
				Problem: filepath.Base(path) + " is a symbolic link, which warren never follows in a repo",
				Fix:     "replace the link by the file it points to"}
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &UnsafeRepoError{Dir: filepath.Dir(path), Path: path, Fix: "move it away",
			Problem: fmt.Sprintf("%s is not a regular file (%v)", filepath.Base(path), st.Mode().Type())}
	}
	return readLimited(f, path, limit)
}

// openNoFollow opens path with O_NOFOLLOW and O_NONBLOCK (see
// repofile.OpenNoFollow).
func openNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	return repofile.OpenNoFollow(path, flag, perm)
}

// WriteFileAtomic replaces path with data, with permissions mode, so that
// readers see the old content or the new, never a half-written file, and the
// new content survives a crash once it returns: it writes a new temporary
// file next to path (O_CREATE|O_EXCL|O_NOFOLLOW, so no planted file or link
// is ever written through), fsyncs it, renames it over path (a symbolic
// link at path is replaced, not followed) and fsyncs the directory. On error
// the temporary file is removed and path is untouched. Every file warren
// writes in a repo goes through it: config.toml, identity.key, api.json,
// api.token and the tunnel manager's tunnels.json.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := writeTemp(dir, base, data, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename is durable only once the directory is.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: open the directory to sync it: %w", path, err)
	}
	defer d.Close()
	if err := syncDir(d); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("write %s: sync the directory: %w", path, err)
	}
	return nil
}

// writeTemp writes data to a new file in dir and fsyncs it; on error nothing
// is left behind.
func writeTemp(dir, base string, data []byte, mode os.FileMode) (tmp string, err error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	tmp = filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode.Perm()); err != nil {
		return "", err
	}
	if _, err = f.Write(data); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	return tmp, nil
}

// syncDir fsyncs a directory; a variable so that a test can see it called.
var syncDir = func(d *os.File) error { return d.Sync() }
