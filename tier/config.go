package tier

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Defaults of the Config fields left zero.
const (
	DefaultSealSize  = 32 << 20
	DefaultSealIdle  = 15 * time.Minute
	DefaultLocalKeep = 24 * time.Hour
	DefaultCacheSize = 1 << 30
	// DefaultHighWater is the fraction of the archive's file system in use
	// above which the tier warns and evicts every confirmed byte at once,
	// whatever LocalKeep says.
	DefaultHighWater = 0.90
)

// Config configures a Tier.
type Config struct {
	// URL is s3://BUCKET/PREFIX (PREFIX may be empty).
	URL string
	// Endpoint is the S3 endpoint, http://host:port or https://host:port.
	Endpoint string
	// CAFile is a PEM bundle to trust for an https Endpoint besides the
	// system's roots.
	CAFile string
	// PathStyle forces path-style requests (http://host/BUCKET/KEY), as
	// on-prem stores often need; otherwise the client picks.
	PathStyle bool
	// Region is the bucket's region; "" takes AWS_REGION, then us-east-1.
	Region string
	// Creds are the S3 credentials; nil takes them the way S3 tools do:
	// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then the AWS credentials
	// file (AWS_SHARED_CREDENTIALS_FILE, ~/.aws/credentials).
	Creds *credentials.Credentials

	// SealSize cuts a segment once that many unsealed bytes of a file
	// wait; SealIdle cuts one when a file was not written for that long.
	// A superseded version is sealed at once.
	SealSize int64
	SealIdle time.Duration
	// LocalKeep is how long sealed bytes stay on the local disk after
	// their segment is confirmed: 0 evicts them at once, negative never
	// (above the high-water mark they are evicted regardless).
	LocalKeep time.Duration
	// HighWater is DefaultHighWater when zero.
	HighWater float64
	// CacheSize bounds the read cache of decompressed frames.
	CacheSize int64
	// Retain, when positive, deletes files whose last byte was sealed
	// longer than Retain ago: their segments, local copy and index entry.
	// RetainAgent overrides it per agent id (0: keep for ever).
	Retain      time.Duration
	RetainAgent map[string]time.Duration
	// Every is the period of the seal loop (default 5 s, or half of a
	// shorter SealIdle).
	Every time.Duration
	// SnapshotEvery is how often the catalog is shipped to the bucket
	// (default 5 min; and on stop).
	SnapshotEvery time.Duration

	// State is the historian's state directory (the tier uses
	// State/tier); Root the archive directory.
	State, Root string
	// FileMode and DirMode are the modes of what recovery recreates.
	FileMode, DirMode fs.FileMode
	// Now is the clock (nil: time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// ParseURL splits s3://BUCKET/PREFIX; the prefix comes back without a
// trailing slash.
func ParseURL(s string) (bucket, prefix string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%q is not s3://BUCKET/PREFIX", s)
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

// ConfigError names the Config field that cannot be used.
type ConfigError struct {
	Field, Value string
	Err          error
}

func (e *ConfigError) Error() string { return e.Field + " " + e.Value + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func (c *Config) check() error {
	if _, _, err := ParseURL(c.URL); err != nil {
		return &ConfigError{"URL", c.URL, err}
	}
	u, err := url.Parse(c.Endpoint)
	if c.Endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return &ConfigError{"Endpoint", c.Endpoint, errors.New("want http://HOST[:PORT] or https://HOST[:PORT]")}
	}
	switch {
	case c.SealSize < 0:
		return &ConfigError{"SealSize", fmt.Sprint(c.SealSize), errors.New("must not be negative")}
	case c.SealIdle < 0:
		return &ConfigError{"SealIdle", c.SealIdle.String(), errors.New("must not be negative")}
	case c.CacheSize < 0:
		return &ConfigError{"CacheSize", fmt.Sprint(c.CacheSize), errors.New("must not be negative")}
	case c.Retain < 0:
		return &ConfigError{"Retain", c.Retain.String(), errors.New("must not be negative")}
	case c.State == "" || c.Root == "":
		return &ConfigError{"State", c.State, errors.New("state and archive directories are required")}
	}
	for id, d := range c.RetainAgent {
		if d < 0 {
			return &ConfigError{"RetainAgent", id + "=" + d.String(), errors.New("must not be negative")}
		}
	}
	if c.SealSize == 0 {
		c.SealSize = DefaultSealSize
	}
	if c.SealIdle == 0 {
		c.SealIdle = DefaultSealIdle
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.HighWater == 0 {
		c.HighWater = DefaultHighWater
	}
	if c.Every == 0 {
		// Often enough that a short SealIdle (tests) is kept.
		c.Every = min(5*time.Second, max(c.SealIdle/2, 200*time.Millisecond))
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 5 * time.Minute
	}
	if c.FileMode == 0 {
		c.FileMode = 0o644
	}
	if c.DirMode == 0 {
		c.DirMode = 0o755
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// retainFor is the retention of agent's files (0: for ever).
func (c *Config) retainFor(agent string) time.Duration {
	if d, ok := c.RetainAgent[agent]; ok {
		return d
	}
	return c.Retain
}
