package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrUnsafeRepo is matched (errors.Is) by every refusal of a repo, or of a
// file in it, that another local user could have planted or could change:
// owned by someone else, writable by group or others, a symbolic link, or
// not a regular file. The error says what is wrong and how to fix it.
var ErrUnsafeRepo = errors.New("unsafe repo")

// UnsafeRepoError is the error behind ErrUnsafeRepo.
type UnsafeRepoError struct {
	Dir     string // the repo directory
	Path    string // the directory or file refused
	Problem string // what is wrong, e.g. "directory is writable by group or others (mode 0777)"
	Fix     string // what to do about it, e.g. "run: chmod 700 /x"
}

func (e *UnsafeRepoError) Error() string {
	return fmt.Sprintf("repo %s: %s; %s", e.Dir, e.Problem, e.Fix)
}

// Is makes errors.Is(err, ErrUnsafeRepo) true.
func (e *UnsafeRepoError) Is(target error) bool { return target == ErrUnsafeRepo }

// secret files must not even be readable by group or others.
func secretFile(name string) bool { return name == KeyFile || name == TokenFile }

// repoFiles are the files checked whenever a repo is opened.
var repoFiles = []string{ConfigFile, KeyFile, TokenFile, TunnelsFile, LockFile, APIFile}

// checkDir refuses a repo directory that is not a directory, is owned by
// another user, or is writable by group or others (ssh's StrictModes). The
// directory itself may be reached through a symbolic link the owner made;
// what it holds never is.
func checkDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("repo %s: %w", dir, err)
	}
	if !st.IsDir() {
		return &UnsafeRepoError{Dir: dir, Path: dir, Problem: "not a directory",
			Fix: "use another --repo, or remove it"}
	}
	return checkOwnerMode(dir, dir, "directory", st, 0o022, "700")
}

// checkOwnerMode refuses st when another user owns it or any bit of mask is
// set in its permissions.
func checkOwnerMode(dir, path, what string, st fs.FileInfo, mask fs.FileMode, chmod string) error {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		fix := fmt.Sprintf("check its content, then run: chown %d %s", os.Getuid(), path)
		if path == dir {
			fix = "another user may have put files in it: remove it, or use another --repo"
		}
		return &UnsafeRepoError{Dir: dir, Path: path, Fix: fix,
			Problem: fmt.Sprintf("%s is owned by uid %d, not by you (uid %d)", what, sys.Uid, os.Getuid())}
	}
	if perm := st.Mode().Perm(); perm&mask != 0 {
		who := "writable by group or others"
		if mask&0o044 != 0 && perm&0o022 == 0 {
			who = "readable by group or others"
		} else if mask&0o044 != 0 {
			who = "accessible by group or others"
		}
		return &UnsafeRepoError{Dir: dir, Path: path,
			Problem: fmt.Sprintf("%s is %s (mode %04o)", what, who, perm),
			Fix:     fmt.Sprintf("run: chmod %s %s", chmod, path)}
	}
	return nil
}

// checkFile refuses a file of the repo that is a symbolic link, not a
// regular file, owned by another user or writable by group or others (for
// the identity key and the API token: accessible by group or others). A
// missing file passes.
func checkFile(dir, name string) error {
	p := filepath.Join(dir, name)
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("repo %s: %w", dir, err)
	}
	return checkFileInfo(dir, name, st)
}

func checkFileInfo(dir, name string, st fs.FileInfo) error {
	p := filepath.Join(dir, name)
	if st.Mode()&fs.ModeSymlink != 0 {
		fix := "replace the link by the file it points to"
		switch name {
		case LockFile, APIFile:
			fix = "run: rm " + p
		}
		return &UnsafeRepoError{Dir: dir, Path: p, Fix: fix,
			Problem: name + " is a symbolic link, which warren never follows in a repo"}
	}
	if !st.Mode().IsRegular() {
		return &UnsafeRepoError{Dir: dir, Path: p, Fix: "move it away",
			Problem: fmt.Sprintf("%s is not a regular file (%v)", name, st.Mode().Type())}
	}
	if secretFile(name) {
		return checkOwnerMode(dir, p, name, st, 0o077, "600")
	}
	return checkOwnerMode(dir, p, name, st, 0o022, "600")
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
	f, err := openNoFollow(filepath.Join(dir, name), os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			st, lerr := os.Lstat(filepath.Join(dir, name))
			if lerr == nil {
				return nil, checkFileInfo(dir, name, st)
			}
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkFileInfo(dir, name, st); err != nil {
		return nil, err
	}
	return readLimited(f, f.Name(), limit)
}

func readLimited(f *os.File, path string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
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

// openNoFollow opens path with O_NOFOLLOW (a symbolic link fails with
// ELOOP) and O_NONBLOCK (a FIFO planted in its place cannot hang the open;
// regular files ignore the flag).
func openNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, perm)
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
