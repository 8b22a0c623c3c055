package tier

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// ErrCorrupt is a segment whose bytes fail a check: its frame checksums,
// its SHA-256, its length, or its ETag against the one recorded when it
// was written. Reads of such bytes fail; they are never served.
var ErrCorrupt = errors.New("segment fails its checksum")

// Object metadata of a segment (x-amz-meta-*).
const (
	metaHistorian = "Syncer-Historian"
	metaEpoch     = "Syncer-Epoch"
	metaSHA256    = "Syncer-Sha256"
	metaLength    = "Syncer-Length"
	metaMtime     = "Syncer-Mtime-Ns"
)

// bucket is the object store under one prefix.
type bucket struct {
	c      *minio.Client
	core   minio.Core
	name   string
	prefix string // "" or "p/"
	reqs   atomic.Int64
}

func newBucket(cfg *Config) (*bucket, error) {
	name, prefix, _ := ParseURL(cfg.URL)
	u, _ := url.Parse(cfg.Endpoint)
	creds := cfg.Creds
	if creds == nil {
		creds = credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}})
	}
	region := cfg.Region
	if region == "" {
		region = os.Getenv("AWS_REGION")
	}
	if region == "" {
		region = "us-east-1"
	}
	tr, err := minio.DefaultTransport(u.Scheme == "https")
	if err != nil {
		return nil, err
	}
	tr.MaxIdleConnsPerHost = 64
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, &ConfigError{"CAFile", cfg.CAFile, err}
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{"CAFile", cfg.CAFile, errors.New("no PEM certificate in it")}
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: creds, Secure: u.Scheme == "https", Region: region, BucketLookup: lookup, Transport: tr})
	if err != nil {
		return nil, &ConfigError{"Endpoint", cfg.Endpoint, err}
	}
	if prefix != "" {
		prefix += "/"
	}
	return &bucket{c: c, core: minio.Core{Client: c}, name: name, prefix: prefix}, nil
}

// errExists is a conditional PUT that found the object already there.
var errExists = errors.New("object exists")

// putNew writes key only if it does not exist (If-None-Match: *).
func (b *bucket) putNew(ctx context.Context, key string, data []byte, meta map[string]string) (etag string, err error) {
	b.reqs.Add(1)
	opts := minio.PutObjectOptions{UserMetadata: meta, ContentType: "application/zstd", DisableMultipart: true, SendContentMd5: true}
	opts.SetMatchETagExcept("*")
	info, err := b.c.PutObject(ctx, b.name, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		if r := minio.ToErrorResponse(err); r.StatusCode == http.StatusPreconditionFailed || r.Code == "PreconditionFailed" {
			return "", errExists
		}
		return "", fmt.Errorf("put s3://%s/%s: %w", b.name, key, err)
	}
	return strings.Trim(info.ETag, `"`), nil
}

// put writes key, replacing what is there (metadata objects).
func (b *bucket) put(ctx context.Context, key string, data []byte) error {
	b.reqs.Add(1)
	_, err := b.c.PutObject(ctx, b.name, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{DisableMultipart: true, SendContentMd5: true})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", b.name, key, err)
	}
	return nil
}

// stat returns an object's ETag and user metadata (keys as stored,
// without the x-amz-meta- prefix).
func (b *bucket) stat(ctx context.Context, key string) (etag string, size int64, meta map[string]string, err error) {
	b.reqs.Add(1)
	info, err := b.c.StatObject(ctx, b.name, key, minio.StatObjectOptions{})
	if err != nil {
		return "", 0, nil, fmt.Errorf("stat s3://%s/%s: %w", b.name, key, err)
	}
	meta = map[string]string{}
	for k, v := range info.UserMetadata {
		meta[k] = v
	}
	for k, v := range info.Metadata {
		if m, ok := strings.CutPrefix(k, "X-Amz-Meta-"); ok && len(v) > 0 {
			meta[m] = v[0]
		}
	}
	return strings.Trim(info.ETag, `"`), info.Size, meta, nil
}

// getRange reads n bytes of key from off (n < 0: to the end); etag, if
// not "", must be the object's (If-Match), or the read fails ErrCorrupt:
// the object was replaced behind the tier's back.
func (b *bucket) getRange(ctx context.Context, key, etag string, off, n int64) ([]byte, error) {
	b.reqs.Add(1)
	opts := minio.GetObjectOptions{}
	if n >= 0 {
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, err
		}
	}
	if etag != "" {
		_ = opts.SetMatchETag(etag)
	}
	rc, _, _, err := b.core.GetObject(ctx, b.name, key, opts)
	if err != nil {
		if r := minio.ToErrorResponse(err); r.StatusCode == http.StatusPreconditionFailed {
			return nil, fmt.Errorf("%w: s3://%s/%s was replaced (ETag is not %s)", ErrCorrupt, b.name, key, etag)
		}
		return nil, fmt.Errorf("get s3://%s/%s: %w", b.name, key, err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	if n > 0 {
		buf.Grow(int(n))
	}
	if _, err := io.Copy(&buf, rc); err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", b.name, key, err)
	}
	if n >= 0 && int64(buf.Len()) != n {
		return nil, fmt.Errorf("%w: s3://%s/%s: %d bytes at %d, want %d", ErrCorrupt, b.name, key, buf.Len(), off, n)
	}
	return buf.Bytes(), nil
}

// list calls fn for every object under the bucket's prefix + sub.
func (b *bucket) list(ctx context.Context, sub string, fn func(key string, size int64) error) error {
	b.reqs.Add(1)
	for o := range b.c.ListObjects(ctx, b.name, minio.ListObjectsOptions{Prefix: b.prefix + sub, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("list s3://%s/%s%s: %w", b.name, b.prefix, sub, o.Err)
		}
		if err := fn(o.Key, o.Size); err != nil {
			return err
		}
	}
	return nil
}

func (b *bucket) remove(ctx context.Context, key string) error {
	b.reqs.Add(1)
	if err := b.c.RemoveObject(ctx, b.name, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete s3://%s/%s: %w", b.name, key, err)
	}
	return nil
}

// Segment keys.

// escapeKey keeps the bytes of a path that are safe in every store's keys
// and URLs, and writes the others (and '%', '@') as %XX.
func escapeKey(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_./+=,:", c) >= 0 {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

func unescapeKey(s string) (string, error) { return url.PathUnescape(s) }

// segmentKey names bytes [start,end) of agent's rel sealed by historian
// (its id, '-', a nonce).
func (b *bucket) segmentKey(agent, rel string, start, end int64, historian string) string {
	return fmt.Sprintf("%sseg/%s/%s@%016x-%016x.%s.zst", b.prefix, agent, escapeKey(rel), start, end, historian)
}

// parseSegmentKey is the inverse of segmentKey.
func (b *bucket) parseSegmentKey(key string) (agent, rel string, start, end int64, historian string, err error) {
	rest, ok := strings.CutPrefix(key, b.prefix+"seg/")
	bad := fmt.Errorf("%s: not a segment key", key)
	if !ok {
		return "", "", 0, 0, "", bad
	}
	agent, rest, ok = strings.Cut(rest, "/")
	at := strings.LastIndexByte(rest, '@')
	if !ok || at < 0 {
		return "", "", 0, 0, "", bad
	}
	if rel, err = unescapeKey(rest[:at]); err != nil {
		return "", "", 0, 0, "", bad
	}
	f := strings.SplitN(strings.TrimSuffix(rest[at+1:], ".zst"), ".", 2)
	r := strings.SplitN(f[0], "-", 2)
	if len(f) != 2 || len(r) != 2 {
		return "", "", 0, 0, "", bad
	}
	s, err1 := strconv.ParseInt(r[0], 16, 64)
	e, err2 := strconv.ParseInt(r[1], 16, 64)
	if err1 != nil || err2 != nil || e < s {
		return "", "", 0, 0, "", bad
	}
	hid, _, _ := strings.Cut(f[1], "-")
	return agent, rel, s, e, hid, nil
}

func (b *bucket) metaKey(agent, rel string) string {
	return b.prefix + "meta/" + agent + "/" + escapeKey(rel)
}
