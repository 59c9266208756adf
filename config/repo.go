package config

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/warren-p2p/warren/internal/repofile"
)

// Files inside a repo.
const (
	ConfigFile  = repofile.ConfigFile
	KeyFile     = repofile.KeyFile
	LockFile    = repofile.LockFile
	APIFile     = repofile.APIFile   // where the running daemon serves its API
	APISocket   = repofile.APISocket // the unix socket of the API
	TokenFile   = repofile.TokenFile // bearer token for the TCP API
	TunnelsFile = repofile.TunnelsFile
)

// ErrNoRepo is returned by Open when the directory holds no repo.
var ErrNoRepo = errors.New("no warren repo")

// ErrNoEndpoint is returned by ReadEndpoint when no daemon has recorded an
// API endpoint in the repo.
var ErrNoEndpoint = repofile.ErrNoEndpoint

// Largest files read from a repo: anything bigger is not one warren wrote.
const (
	maxConfigSize = 1 << 20
	maxKeySize    = 64 << 10
	maxTokenSize  = repofile.MaxTokenSize
)

// Repo is a warren repo on disk.
type Repo struct {
	Dir    string
	Config Config
	Key    crypto.PrivKey
	lock   *os.File
}

// DefaultDir resolves the repo directory: flag, else $WARREN_REPO, else ~/.warren.
func DefaultDir(flag string) (string, error) { return repofile.DefaultDir(flag) }

// Path returns the path of a file inside the repo.
func (r *Repo) Path(name string) string { return filepath.Join(r.Dir, name) }

// Exists reports whether dir holds a repo: a config file, or anything
// (even a symbolic link) in its place, which Open then refuses.
func Exists(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, ConfigFile))
	return err == nil
}

// Init creates a repo in dir with a new Ed25519 identity and the profile's
// config. It refuses to touch a directory that already holds a repo. On
// failure nothing half-written is left behind.
func Init(dir, profile string) (*Repo, error) {
	cfg, err := ForProfile(profile)
	if err != nil {
		return nil, fmt.Errorf("init repo %s: %w", dir, err)
	}
	return InitWith(dir, cfg)
}

// InitWith is Init with an explicit configuration.
func InitWith(dir string, cfg Config) (*Repo, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("init repo %s: %w", dir, err)
	}
	if Exists(dir) || lexists(filepath.Join(dir, KeyFile)) {
		return nil, fmt.Errorf("init repo %s: a warren repo already exists there; refusing to overwrite it (use another --repo, or remove it yourself)", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init repo %s: %w", dir, err)
	}
	// The directory may have been there already, made by someone else.
	if err := CheckRepo(dir); err != nil {
		return nil, fmt.Errorf("init %w", err)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("init repo %s: generate identity: %w", dir, err)
	}
	raw, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("init repo %s: encode identity: %w", dir, err)
	}
	text, err := cfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("init repo %s: %w", dir, err)
	}
	keyPath, cfgPath := filepath.Join(dir, KeyFile), filepath.Join(dir, ConfigFile)
	// The key first, the config last: a repo counts as existing once its
	// config is there, so a crash in between leaves no repo that looks whole.
	if err := WriteFileAtomic(keyPath, raw, 0o600); err != nil {
		return nil, fmt.Errorf("init repo %s: %w", dir, err)
	}
	if err := WriteFileAtomic(cfgPath, text, 0o600); err != nil {
		_ = os.Remove(keyPath)
		return nil, fmt.Errorf("init repo %s: %w", dir, err)
	}
	return &Repo{Dir: dir, Config: cfg, Key: key}, nil
}

// Open reads the repo in dir. It does not lock it.
func Open(dir string) (*Repo, error) {
	if !Exists(dir) {
		return nil, fmt.Errorf("open repo %s: %w (run `warren init` or `warren daemon` first)", dir, ErrNoRepo)
	}
	if err := CheckRepo(dir); err != nil {
		return nil, fmt.Errorf("open %w", err)
	}
	text, err := readRepoFile(dir, ConfigFile, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("open repo %s: read %s: %w", dir, ConfigFile, err)
	}
	cfg, err := Parse(text)
	if err != nil {
		return nil, fmt.Errorf("open repo %s: %w", dir, err)
	}
	raw, err := readRepoFile(dir, KeyFile, maxKeySize)
	if err != nil {
		return nil, fmt.Errorf("open repo %s: read identity: %w", dir, err)
	}
	key, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("open repo %s: %s is not a libp2p private key: %w", dir, KeyFile, err)
	}
	return &Repo{Dir: dir, Config: cfg, Key: key}, nil
}

// Lock takes the repo's lock for this process. The lock is an flock(2) on
// repo.lock, so the kernel drops it when a daemon dies, even by SIGKILL: a
// stale lock file never blocks the next start. repo.lock is opened with
// O_NOFOLLOW and checked on the open descriptor, so a symbolic link or
// another user's file in its place is refused, never truncated.
//
// A deleted repo.lock no longer excludes a second daemon: the daemon also
// asks the API recorded in api.json (see cmd/warren).
func (r *Repo) Lock() error {
	if err := checkDir(r.Dir); err != nil {
		return fmt.Errorf("lock %w", err)
	}
	f, err := openNoFollow(r.Path(LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			if cerr := checkFile(r.Dir, LockFile); cerr != nil {
				return fmt.Errorf("lock %w", cerr)
			}
		}
		return fmt.Errorf("lock repo %s: %w", r.Dir, err)
	}
	st, err := f.Stat()
	if err == nil {
		err = checkFileInfo(r.Dir, LockFile, st)
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("lock %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := readLimited(f, f.Name(), 64)
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := strings.TrimSpace(string(holder))
			if who != "" {
				who = " (pid " + who + ")"
			}
			return fmt.Errorf("lock repo %s: another warren daemon%s is already using this repo", r.Dir, who)
		}
		return fmt.Errorf("lock repo %s: %w", r.Dir, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	r.lock = f
	return nil
}

// Unlock releases the lock taken by Lock.
func (r *Repo) Unlock() error {
	if r.lock == nil {
		return nil
	}
	_ = r.lock.Truncate(0)
	err := r.lock.Close() // closing the descriptor drops the flock
	r.lock = nil
	return err
}

// ReadToken returns the API bearer token of the repo in dir, for clients;
// unlike Token it never creates one.
func ReadToken(dir string) (string, error) { return repofile.ReadToken(dir) }

// Token returns the API bearer token, creating it (mode 0600) if missing;
// the daemon calls it when it serves the API on TCP.
func (r *Repo) Token() (string, error) {
	p := r.Path(TokenFile)
	b, err := readRepoFile(r.Dir, TokenFile, maxTokenSize)
	if errors.Is(err, ErrUnsafeRepo) {
		return "", fmt.Errorf("API token: %w", err)
	}
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("create API token: %w", err)
	}
	tok := hex.EncodeToString(buf)
	if err := WriteFileAtomic(p, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("create API token: %w", err)
	}
	return tok, nil
}

// Endpoint records where a running daemon serves its API.
type Endpoint = repofile.Endpoint

// WriteEndpoint records the API endpoint in the repo.
func (r *Repo) WriteEndpoint(e Endpoint) error {
	b, _ := json.MarshalIndent(e, "", "  ")
	return WriteFileAtomic(r.Path(APIFile), append(b, '\n'), 0o600)
}

// RemoveEndpoint deletes the endpoint record and the socket of this
// process: if api.json names another process, both stay (they are that
// daemon's).
func (r *Repo) RemoveEndpoint() {
	if e, err := ReadEndpoint(r.Dir); err == nil && e.PID != os.Getpid() {
		return
	}
	r.RemoveStaleEndpoint()
}

// RemoveStaleEndpoint deletes the endpoint record and the socket whoever
// wrote them. The daemon calls it at start only after it found that no
// daemon answers there.
func (r *Repo) RemoveStaleEndpoint() {
	_ = os.Remove(r.Path(APIFile))
	_ = os.Remove(r.Path(APISocket))
}

// ReadEndpoint reads the endpoint record of the daemon running on dir. With
// no record the error matches ErrNoEndpoint; an unsafe repo or record
// (another user's, writable by others, a symbolic link) matches
// ErrUnsafeRepo.
func ReadEndpoint(dir string) (Endpoint, error) { return repofile.ReadEndpoint(dir) }

func lexists(p string) bool { _, err := os.Lstat(p); return err == nil }
