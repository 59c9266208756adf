// Package repofile reads the files of a warren repo safely: it refuses a
// repo directory or file that another local user could have planted or
// could change (owned by someone else, writable by group or others, a
// symbolic link, not a regular file). It imports nothing but the standard
// library, so that package client can find a daemon through it without
// pulling in the node; package config builds on it.
package repofile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Files inside a repo.
const (
	ConfigFile  = "config.toml"
	KeyFile     = "identity.key"
	LockFile    = "repo.lock"
	APIFile     = "api.json"  // where the running daemon serves its API
	APISocket   = "api.sock"  // the unix socket of the API
	TokenFile   = "api.token" // bearer token for the TCP API
	TunnelsFile = "tunnels.json"
)

// Largest files a client reads from a repo: anything bigger is not one
// warren wrote.
const (
	MaxEndpointSize = 64 << 10
	MaxTokenSize    = 4 << 10
)

// ErrUnsafeRepo is matched (errors.Is) by every refusal of a repo, or of a
// file in it, that another local user could have planted or could change:
// owned by someone else, writable by group or others, a symbolic link, or
// not a regular file. The error says what is wrong and how to fix it.
var ErrUnsafeRepo = errors.New("unsafe repo")

// ErrNoEndpoint is returned by ReadEndpoint when no daemon has recorded an
// API endpoint in the repo.
var ErrNoEndpoint = errors.New("no warren daemon is running")

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

// DefaultDir resolves the repo directory: flag, else $WARREN_REPO, else ~/.warren.
func DefaultDir(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	if env := os.Getenv("WARREN_REPO"); env != "" {
		return filepath.Abs(env)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the repo: no --repo, no $WARREN_REPO and no home directory: %w", err)
	}
	return filepath.Join(home, ".warren"), nil
}

// secret files must not even be readable by group or others.
func secretFile(name string) bool { return name == KeyFile || name == TokenFile }

// CheckDir refuses a repo directory that is not a directory, is owned by
// another user, or is writable by group or others (ssh's StrictModes). The
// directory itself may be reached through a symbolic link the owner made;
// what it holds never is.
func CheckDir(dir string) error {
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

// CheckFile refuses a file of the repo that is a symbolic link, not a
// regular file, owned by another user or writable by group or others (for
// the identity key and the API token: accessible by group or others). A
// missing file passes.
func CheckFile(dir, name string) error {
	p := filepath.Join(dir, name)
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("repo %s: %w", dir, err)
	}
	return CheckFileInfo(dir, name, st)
}

// CheckFileInfo is CheckFile on the FileInfo of the file (from Lstat, or
// Stat on an open descriptor).
func CheckFileInfo(dir, name string, st fs.FileInfo) error {
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

// Read reads one file of the repo without following a symbolic link,
// after checking (on the open descriptor) who owns it and its mode. A file
// larger than limit is an error.
func Read(dir, name string, limit int64) ([]byte, error) {
	f, err := OpenNoFollow(filepath.Join(dir, name), os.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			st, lerr := os.Lstat(filepath.Join(dir, name))
			if lerr == nil {
				return nil, CheckFileInfo(dir, name, st)
			}
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := CheckFileInfo(dir, name, st); err != nil {
		return nil, err
	}
	return ReadLimited(f, f.Name(), limit)
}

// ReadLimited reads f (named path in errors) to its end, refusing more
// than limit bytes.
func ReadLimited(f *os.File, path string, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// OpenNoFollow opens path with O_NOFOLLOW (a symbolic link fails with
// ELOOP) and O_NONBLOCK (a FIFO planted in its place cannot hang the open;
// regular files ignore the flag).
func OpenNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, perm)
}

// Endpoint records where a running daemon serves its API (the repo's
// api.json).
type Endpoint struct {
	Unix string `json:"unix,omitempty"`
	TCP  string `json:"tcp,omitempty"`
	PID  int    `json:"pid"`
}

// ReadEndpoint reads the endpoint record of the daemon running on dir. With
// no record the error matches ErrNoEndpoint; an unsafe repo or record
// (another user's, writable by others, a symbolic link) matches
// ErrUnsafeRepo.
func ReadEndpoint(dir string) (Endpoint, error) {
	var e Endpoint
	err := CheckDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return e, fmt.Errorf("read API endpoint: %w", err)
	}
	var b []byte
	if err == nil {
		b, err = Read(dir, APIFile, MaxEndpointSize)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return e, fmt.Errorf("%w on repo %s (no %s; start one with `warren daemon`)", ErrNoEndpoint, dir, APIFile)
	}
	if err != nil {
		return e, fmt.Errorf("read API endpoint: %w", err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("read API endpoint %s: %w", filepath.Join(dir, APIFile), err)
	}
	return e, nil
}

// ReadToken returns the API bearer token of the repo in dir, for clients;
// it never creates one.
func ReadToken(dir string) (string, error) {
	if err := CheckDir(dir); err != nil {
		return "", fmt.Errorf("read the API token: %w", err)
	}
	b, err := Read(dir, TokenFile, MaxTokenSize)
	if err != nil {
		return "", fmt.Errorf("read the API token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("read the API token: %s is empty", filepath.Join(dir, TokenFile))
	}
	return tok, nil
}
