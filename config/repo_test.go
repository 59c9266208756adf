package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nobody is the uid that stands for another local user.
const nobody = 65534

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to chown a file to another user")
	}
}

func newTestRepo(t *testing.T) *Repo {
	t.Helper()
	r, err := Init(filepath.Join(t.TempDir(), "repo"), ProfileTest)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// wantUnsafe checks that err matches ErrUnsafeRepo and says every want.
func wantUnsafe(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, ErrUnsafeRepo) {
		t.Fatalf("%s: got %v, want an ErrUnsafeRepo", what, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", what, err, w)
		}
	}
}

func TestNewRepoIsPrivate(t *testing.T) {
	r := newTestRepo(t)
	st, err := os.Stat(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("new repo has mode %04o, want 0700", st.Mode().Perm())
	}
	if err := CheckRepo(r.Dir); err != nil {
		t.Fatalf("a new repo is not safe: %v", err)
	}
}

func TestForeignOwnedRepoDirRefused(t *testing.T) {
	needRoot(t)
	r := newTestRepo(t)
	if err := os.Chown(r.Dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	_, err := Open(r.Dir)
	wantUnsafe(t, "open", err, "repo "+r.Dir, "owned by uid 65534", "not by you (uid 0)")
	wantUnsafe(t, "lock", r.Lock(), "owned by uid 65534")
	_, err = ReadEndpoint(r.Dir)
	wantUnsafe(t, "read endpoint", err, "owned by uid 65534")
	_, err = ReadToken(r.Dir)
	wantUnsafe(t, "read token", err, "owned by uid 65534")

	// Another user made the directory before the owner's first start.
	dir := filepath.Join(t.TempDir(), "planted")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	_, err = Init(dir, ProfileTest)
	wantUnsafe(t, "init into a foreign directory", err, "owned by uid 65534", "use another --repo")
	if lexists(filepath.Join(dir, KeyFile)) {
		t.Fatal("init wrote an identity key into another user's directory")
	}
}

func TestForeignOwnedFileRefused(t *testing.T) {
	needRoot(t)
	for _, name := range repoFiles {
		t.Run(name, func(t *testing.T) {
			r := newTestRepo(t)
			p := r.Path(name)
			if !lexists(p) {
				if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chown(p, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			_, err := Open(r.Dir)
			wantUnsafe(t, "open", err, name+" is owned by uid 65534", "chown 0 "+p)
		})
	}
}

func TestWorldWritableRepoDirRefused(t *testing.T) {
	r := newTestRepo(t)
	if err := os.Chmod(r.Dir, 0o777); err != nil {
		t.Fatal(err)
	}
	want := "repo " + r.Dir + ": directory is writable by group or others (mode 0777); run: chmod 700 " + r.Dir
	_, err := Open(r.Dir)
	wantUnsafe(t, "open", err, want)
	wantUnsafe(t, "lock", r.Lock(), want)
	if lexists(r.Path(LockFile)) {
		t.Fatal("lock created repo.lock in an unsafe directory")
	}
	_, err = ReadEndpoint(r.Dir)
	wantUnsafe(t, "read endpoint", err, want)
	_, err = Init(r.Dir, ProfileTest) // refuses anyway: a repo is there
	if err == nil {
		t.Fatal("init over a repo succeeded")
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(empty, 0o770); err != nil {
		t.Fatal(err)
	}
	_, err = Init(empty, ProfileTest)
	wantUnsafe(t, "init into a group-writable directory", err, "(mode 0770); run: chmod 700 "+empty)
	if err := os.Chmod(r.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(r.Dir); err != nil {
		t.Fatalf("a 0755 repo (readable, not writable, by others) is refused: %v", err)
	}
}

func TestUnsafeFileModesRefused(t *testing.T) {
	cases := []struct {
		name string
		mode os.FileMode
		want string
	}{
		{KeyFile, 0o620, "identity.key is accessible by group or others (mode 0620); run: chmod 600 "},
		{KeyFile, 0o640, "identity.key is readable by group or others (mode 0640); run: chmod 600 "},
		{ConfigFile, 0o606, "config.toml is writable by group or others (mode 0606); run: chmod 600 "},
		{TunnelsFile, 0o660, "tunnels.json is writable by group or others (mode 0660)"},
		{TokenFile, 0o604, "api.token is readable by group or others (mode 0604)"},
		{APIFile, 0o622, "api.json is writable by group or others"},
		{LockFile, 0o666, "repo.lock is writable by group or others"},
	}
	for _, c := range cases {
		r := newTestRepo(t)
		p := r.Path(c.name)
		if !lexists(p) {
			if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, c.mode); err != nil {
			t.Fatal(err)
		}
		_, err := Open(r.Dir)
		wantUnsafe(t, c.name, err, c.want)
	}
	// config.toml may be readable by others (it holds no secret).
	r := newTestRepo(t)
	if err := os.Chmod(r.Path(ConfigFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(r.Dir); err != nil {
		t.Fatalf("a 0644 config.toml is refused: %v", err)
	}
}

func TestSymlinkedLockRefusedAndTargetUntouched(t *testing.T) {
	r := newTestRepo(t)
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, r.Path(LockFile)); err != nil {
		t.Fatal(err)
	}
	wantUnsafe(t, "lock", r.Lock(), "repo.lock is a symbolic link", "rm "+r.Path(LockFile))
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Fatalf("the link's target was changed to %q", b)
	}
	_, err := Open(r.Dir)
	wantUnsafe(t, "open", err, "repo.lock is a symbolic link")

	// A dangling link must not create its target either.
	if err := os.Remove(r.Path(LockFile)); err != nil {
		t.Fatal(err)
	}
	ghost := filepath.Join(t.TempDir(), "ghost")
	if err := os.Symlink(ghost, r.Path(LockFile)); err != nil {
		t.Fatal(err)
	}
	wantUnsafe(t, "lock through a dangling link", r.Lock(), "symbolic link")
	if lexists(ghost) {
		t.Fatal("lock created the target of a dangling link")
	}
}

func TestSymlinkedStateFilesRefused(t *testing.T) {
	for _, name := range []string{TunnelsFile, APIFile, ConfigFile, KeyFile, TokenFile} {
		t.Run(name, func(t *testing.T) {
			r := newTestRepo(t)
			elsewhere := filepath.Join(t.TempDir(), "elsewhere")
			content := []byte(`{"unix":"/tmp/evil.sock","pid":1,"version":1,"tunnels":[]}`)
			if lexists(r.Path(name)) {
				b, _ := os.ReadFile(r.Path(name))
				content = b
				_ = os.Remove(r.Path(name))
			}
			if err := os.WriteFile(elsewhere, content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, r.Path(name)); err != nil {
				t.Fatal(err)
			}
			_, err := Open(r.Dir)
			wantUnsafe(t, "open", err, name+" is a symbolic link")
			_, err = ReadFileNoFollow(r.Path(name), 1<<20)
			wantUnsafe(t, "ReadFileNoFollow", err, "symbolic link")
			switch name {
			case APIFile:
				_, err = ReadEndpoint(r.Dir)
				wantUnsafe(t, "read endpoint", err, "api.json is a symbolic link")
			case TokenFile:
				_, err = ReadToken(r.Dir)
				wantUnsafe(t, "read token", err, "api.token is a symbolic link")
				_, err = r.Token()
				wantUnsafe(t, "token", err, "api.token is a symbolic link")
			}
		})
	}
}

func TestNotRegularFileRefused(t *testing.T) {
	r := newTestRepo(t)
	if err := os.Mkdir(r.Path(TunnelsFile), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Open(r.Dir)
	wantUnsafe(t, "open", err, "tunnels.json is not a regular file")
	_, err = ReadFileNoFollow(r.Path(TunnelsFile), 1<<20)
	wantUnsafe(t, "ReadFileNoFollow", err, "not a regular file")
}

func TestReadFileNoFollowLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFileNoFollow(p, 10); err != nil || string(b) != "0123456789" {
		t.Fatalf("read %q, %v", b, err)
	}
	if _, err := ReadFileNoFollow(p, 9); err == nil || !strings.Contains(err.Error(), "larger than 9 bytes") {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	var synced []string
	old := syncDir
	syncDir = func(d *os.File) error { synced = append(synced, d.Name()); return d.Sync() }
	t.Cleanup(func() { syncDir = old })

	p := filepath.Join(dir, "state.json")
	data := []byte(strings.Repeat("x", 1<<20))
	if err := WriteFileAtomic(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(data) {
		t.Fatalf("wrote %d bytes, read back %d", len(data), len(b))
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", st.Mode().Perm())
	}
	if len(synced) != 1 || filepath.Clean(synced[0]) != filepath.Clean(dir) {
		t.Fatalf("directory syncs: %v, want one of %s", synced, dir)
	}

	// A link at the path is replaced, never written through.
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "api.json")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("write went through the link: target now %q", b)
	}
	if st, _ := os.Lstat(link); !st.Mode().IsRegular() {
		t.Fatalf("the link is still there: %v", st.Mode())
	}

	// A failed write leaves the old content and no temporary file.
	blocked := filepath.Join(dir, "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "child"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(blocked, []byte("x"), 0o600); err == nil || !strings.Contains(err.Error(), "write "+blocked) {
		t.Fatalf("rename over a non-empty directory: %v", err)
	}
	synced = nil
	syncDir = func(*os.File) error { return errors.New("disk on fire") }
	if err := WriteFileAtomic(p, []byte("y"), 0o600); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("a failed directory sync is not reported: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestUnlockAndRemoveEndpointKeepAnotherDaemonsFiles(t *testing.T) {
	r := newTestRepo(t)
	if err := r.WriteEndpoint(Endpoint{Unix: r.Path(APISocket), PID: os.Getpid() + 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.Path(APISocket), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r.RemoveEndpoint()
	if !lexists(r.Path(APIFile)) || !lexists(r.Path(APISocket)) {
		t.Fatal("RemoveEndpoint removed another process's endpoint")
	}
	if err := r.WriteEndpoint(Endpoint{Unix: r.Path(APISocket), PID: os.Getpid()}); err != nil {
		t.Fatal(err)
	}
	r.RemoveEndpoint()
	if lexists(r.Path(APIFile)) || lexists(r.Path(APISocket)) {
		t.Fatal("RemoveEndpoint left this process's endpoint")
	}
	_, err := ReadEndpoint(r.Dir)
	if !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("read a removed endpoint: %v", err)
	}
}

func TestReadEndpointWithoutRepoSaysNoDaemon(t *testing.T) {
	_, err := ReadEndpoint(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, ErrNoEndpoint) || !strings.Contains(err.Error(), "start one with `warren daemon`") {
		t.Fatalf("missing repo: %v", err)
	}
}
