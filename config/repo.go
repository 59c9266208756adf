package config

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/crypto"
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

// ErrNoRepo is returned by Open when the directory holds no repo.
var ErrNoRepo = errors.New("no warren repo")

// Repo is a warren repo on disk.
type Repo struct {
	Dir    string
	Config Config
	Key    crypto.PrivKey
	lock   *os.File
}

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

// Path returns the path of a file inside the repo.
func (r *Repo) Path(name string) string { return filepath.Join(r.Dir, name) }

// Exists reports whether dir holds a repo.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ConfigFile))
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
	if Exists(dir) || fileExists(filepath.Join(dir, KeyFile)) {
		return nil, fmt.Errorf("init repo %s: a warren repo already exists there; refusing to overwrite it (use another --repo, or remove it yourself)", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init repo %s: %w", dir, err)
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
	text, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, fmt.Errorf("open repo %s: %w", dir, err)
	}
	cfg, err := Parse(text)
	if err != nil {
		return nil, fmt.Errorf("open repo %s: %s: %w", dir, ConfigFile, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, KeyFile))
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
// stale lock file never blocks the next start.
func (r *Repo) Lock() error {
	f, err := os.OpenFile(r.Path(LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock repo %s: %w", r.Dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(r.Path(LockFile))
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
func ReadToken(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, TokenFile))
	if err != nil {
		return "", fmt.Errorf("read the API token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("read the API token: %s is empty", filepath.Join(dir, TokenFile))
	}
	return tok, nil
}

// Token returns the API bearer token, creating it (mode 0600) if missing;
// the daemon calls it when it serves the API on TCP.
func (r *Repo) Token() (string, error) {
	p := r.Path(TokenFile)
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) >= 32 {
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
type Endpoint struct {
	Unix string `json:"unix,omitempty"`
	TCP  string `json:"tcp,omitempty"`
	PID  int    `json:"pid"`
}

// WriteEndpoint records the API endpoint in the repo.
func (r *Repo) WriteEndpoint(e Endpoint) error {
	b, _ := json.MarshalIndent(e, "", "  ")
	return WriteFileAtomic(r.Path(APIFile), append(b, '\n'), 0o600)
}

// RemoveEndpoint deletes the endpoint record and the socket.
func (r *Repo) RemoveEndpoint() {
	_ = os.Remove(r.Path(APIFile))
	_ = os.Remove(r.Path(APISocket))
}

// ReadEndpoint reads the endpoint record of the daemon running on dir.
func ReadEndpoint(dir string) (Endpoint, error) {
	var e Endpoint
	b, err := os.ReadFile(filepath.Join(dir, APIFile))
	if errors.Is(err, fs.ErrNotExist) {
		return e, fmt.Errorf("no warren daemon is running on repo %s (no %s; start one with `warren daemon`)", dir, APIFile)
	}
	if err != nil {
		return e, fmt.Errorf("read API endpoint: %w", err)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("read API endpoint %s: %w", filepath.Join(dir, APIFile), err)
	}
	return e, nil
}

// WriteFileAtomic writes data to path through a temporary file and a rename,
// so readers see the old content or the new, never a half-written file.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
