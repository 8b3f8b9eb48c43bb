// Command image builds an OCI image as a docker-archive tarball from
// files on this machine, without a Docker engine or a registry, for the
// end-to-end cluster (containerd imports it with `ctr images import`).
//
//	image -o out.tar -tag localhost/stash:e2e -entrypoint /usr/local/bin/stash \
//	      -add /path/on/host:/path/in/image ... [-link /bin/sh:busybox] [-libs] [-user 65534] [-env K=V]
//
// With -libs, the shared libraries every added ELF file needs (ldd) are
// added too, so host binaries run in the image.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var adds, envs, dirs, links list
	out := flag.String("o", "", "output tarball")
	tag := flag.String("tag", "", "image reference, e.g. localhost/stash:e2e")
	entry := flag.String("entrypoint", "", "entrypoint (space separated)")
	user := flag.String("user", "", "user to run as")
	libs := flag.Bool("libs", false, "add the shared libraries of added ELF files")
	flag.Var(&adds, "add", "host:image path (file or directory, recursive)")
	flag.Var(&dirs, "dir", "empty directory to create (mode 1777)")
	flag.Var(&links, "link", "image path:target, a symlink to create")
	flag.Var(&envs, "env", "K=V")
	flag.Parse()
	if err := build(*out, *tag, *entry, *user, *libs, adds, dirs, envs, links); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

type entry struct {
	src  string // host path; "" for a directory
	link string
	mode os.FileMode
	dir  bool
}

func build(out, tag, entrypoint, user string, withLibs bool, adds, dirs, envs, links list) error {
	files := map[string]entry{}
	var addPath func(src, dst string) error
	addPath = func(src, dst string) error {
		fi, err := os.Lstat(src)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return err
			}
			files[dst] = entry{link: target}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(src), target)
				return addPath(target, filepath.Join(filepath.Dir(dst), filepath.Base(target)))
			}
			return addPath(target, target)
		case fi.IsDir():
			files[dst] = entry{dir: true, mode: fi.Mode().Perm()}
			ents, err := os.ReadDir(src)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if err := addPath(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
					return err
				}
			}
		default:
			files[dst] = entry{src: src, mode: fi.Mode().Perm()}
		}
		return nil
	}
	for _, a := range adds {
		src, dst, ok := strings.Cut(a, ":")
		if !ok {
			dst = src
		}
		if err := addPath(src, dst); err != nil {
			return fmt.Errorf("-add %s: %w", a, err)
		}
	}
	if withLibs {
		var elfs []string
		for dst, e := range files {
			if e.src != "" && isELF(e.src) {
				elfs = append(elfs, files[dst].src)
			}
		}
		for _, f := range elfs {
			deps, err := ldd(f)
			if err != nil {
				return err
			}
			for _, d := range deps {
				if _, ok := files[d]; !ok {
					if err := addPath(d, d); err != nil {
						return err
					}
				}
			}
		}
	}
	for _, d := range dirs {
		files[d] = entry{dir: true, mode: 0o1777}
	}
	for _, l := range links {
		dst, target, ok := strings.Cut(l, ":")
		if !ok {
			return fmt.Errorf("-link %q: want path:target", l)
		}
		files[dst] = entry{link: target}
	}
	layer, err := layerOf(files)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = strings.Fields(entrypoint)
	cfg.Config.User = user
	cfg.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"}, envs...)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	// Written aside and renamed: a test importing the image while it is
	// rebuilt reads the old file or the new one, never half of one.
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, out)
}

func isELF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 4)
	_, err = io.ReadFull(f, b)
	return err == nil && bytes.Equal(b, []byte("\x7fELF"))
}

// ldd lists the absolute paths of the shared libraries (and the loader)
// an ELF file needs.
func ldd(path string) ([]string, error) {
	out, err := exec.Command("ldd", path).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", path, err, out)
	}
	var libs []string
	for _, l := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	return libs, nil
}

func layerOf(files map[string]entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// Parents first, and every parent directory present.
	all := map[string]entry{}
	for p, e := range files {
		all[p] = e
		for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
			if _, ok := all[d]; !ok {
				all[d] = entry{dir: true, mode: 0o755}
			}
		}
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		e := all[p]
		name := strings.TrimPrefix(p, "/")
		switch {
		case e.dir:
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: int64(e.mode)}); err != nil {
				return nil, err
			}
		case e.link != "":
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: e.link, Mode: 0o777}); err != nil {
				return nil, err
			}
		default:
			b, err := os.ReadFile(e.src)
			if err != nil {
				return nil, err
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(e.mode), Size: int64(len(b))}); err != nil {
				return nil, err
			}
			if _, err := tw.Write(b); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
