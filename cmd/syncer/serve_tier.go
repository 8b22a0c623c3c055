package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/syncer-dev/syncer/ftpfs/accounts"
	"github.com/syncer-dev/syncer/tier"
)

// tierOptions are serve's storage tier flags.
type tierOptions struct {
	URL, Endpoint, CAFile string
	PathStyle             bool
	SealSize, CacheSize   sizeFlag
	SealIdle              time.Duration
	LocalKeep, Retain     ageFlag
	RetainAgent           []string
}

func addTierFlags(f *pflag.FlagSet, o *tierOptions) {
	f.StringVar(&o.URL, "tier", "", "keep sealed bytes in an S3-compatible bucket, `s3://BUCKET/PREFIX` (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION or ~/.aws/credentials)")
	f.StringVar(&o.Endpoint, "tier-endpoint", "", "the S3 endpoint `URL`, http(s)://HOST[:PORT] (required with --tier)")
	f.StringVar(&o.CAFile, "tier-ca", "", "PEM `FILE` of CA certificates to trust for an https --tier-endpoint, besides the system's")
	f.BoolVar(&o.PathStyle, "tier-path-style", false, "address the bucket path-style (http://HOST/BUCKET/KEY), as many on-prem stores need")
	o.SealSize, o.CacheSize = tier.DefaultSealSize, tier.DefaultCacheSize
	f.Var(&o.SealSize, "seal-size", "cut a segment once this many unsealed bytes of a file wait, e.g. 32MiB")
	f.DurationVar(&o.SealIdle, "seal-idle", tier.DefaultSealIdle, "seal a file's remaining bytes once it was not written for this long")
	o.LocalKeep = ageFlag(tier.DefaultLocalKeep)
	f.Var(&o.LocalKeep, "local-keep", "keep sealed bytes on the local disk this long after their segment is confirmed, e.g. 7d (then evicted; the disk's high-water mark, 90%, evicts at once)")
	f.Var(&o.CacheSize, "tier-cache-size", "bound of the local read cache of evicted bytes, e.g. 1GiB")
	f.Var(&o.Retain, "retain", "delete sealed files (segments, local copy, index entry) this long after their last byte was sealed, e.g. 400d (0: keep everything)")
	f.StringArrayVar(&o.RetainAgent, "retain-agent", nil, "per-agent retention `ID=AGE`, overriding --retain (AGE 0 keeps the agent's files for ever); repeatable")
}

// config checks the flags and returns the tier's configuration, nil
// without --tier.
func (o *tierOptions) config(changed func(string) bool) (*tier.Config, error) {
	if o.URL == "" {
		for _, name := range []string{"tier-endpoint", "tier-ca", "tier-path-style", "seal-size", "seal-idle", "local-keep", "tier-cache-size", "retain", "retain-agent"} {
			if changed(name) {
				return nil, usageErrorf("--%s needs --tier", name)
			}
		}
		return nil, nil
	}
	if _, _, err := tier.ParseURL(o.URL); err != nil {
		return nil, usageErrorf("--tier %s", err)
	}
	if o.Endpoint == "" {
		return nil, usageErrorf("--tier needs --tier-endpoint URL (the S3 endpoint)")
	}
	if u, err := url.Parse(o.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return nil, usageErrorf("--tier-endpoint %s: want http://HOST[:PORT] or https://HOST[:PORT]", o.Endpoint)
	}
	if o.CAFile != "" {
		if pem, err := os.ReadFile(o.CAFile); err != nil {
			return nil, usageErrorf("--tier-ca %s: %v", o.CAFile, err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return nil, usageErrorf("--tier-ca %s: no PEM certificate in it", o.CAFile)
		}
	}
	if o.SealSize <= 0 {
		return nil, usageErrorf("--seal-size %d: must be positive", o.SealSize)
	}
	if o.SealIdle <= 0 {
		return nil, usageErrorf("--seal-idle %s: must be positive", o.SealIdle)
	}
	if o.CacheSize < tier.FrameSize {
		return nil, usageErrorf("--tier-cache-size %d: must be at least %d (one frame)", o.CacheSize, tier.FrameSize)
	}
	per := map[string]time.Duration{}
	for _, s := range o.RetainAgent {
		id, age, ok := strings.Cut(s, "=")
		var a ageFlag
		if !ok || id == "" {
			return nil, usageErrorf("--retain-agent %q: want ID=AGE", s)
		}
		if err := a.Set(age); err != nil {
			return nil, usageErrorf("--retain-agent %q: %v", s, err)
		}
		per[id] = time.Duration(a)
	}
	return &tier.Config{URL: o.URL, Endpoint: o.Endpoint, CAFile: o.CAFile, PathStyle: o.PathStyle,
		SealSize: int64(o.SealSize), SealIdle: o.SealIdle, LocalKeep: time.Duration(o.LocalKeep),
		CacheSize: int64(o.CacheSize), Retain: time.Duration(o.Retain), RetainAgent: per}, nil
}

// sizeFlag is a byte size such as 32MiB (pflag.Value).
type sizeFlag int64

func (s *sizeFlag) Set(v string) error {
	if strings.HasSuffix(strings.TrimSpace(v), "/s") {
		return fmt.Errorf("invalid size %q: a size, not a rate", v)
	}
	r, err := accounts.ParseRate(v)
	if err != nil {
		return errors.New(strings.Replace(err.Error(), "rate", "size", 1))
	}
	*s = sizeFlag(r)
	return nil
}
func (s *sizeFlag) String() string { return accounts.Rate(*s).String() }
func (s *sizeFlag) Type() string   { return "size" }

// ageFlag is a duration that also takes days and weeks: 36h, 7d, 2w, 0.
type ageFlag time.Duration

func (a *ageFlag) Set(v string) error {
	v = strings.TrimSpace(v)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(v, suffix); ok {
			if f, err := strconv.ParseFloat(n, 64); err == nil && f >= 0 {
				*a = ageFlag(f * float64(unit))
				return nil
			}
		}
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("invalid age %q: want a duration such as 36h, 7d or 2w", v)
	}
	*a = ageFlag(d)
	return nil
}

func (a *ageFlag) String() string {
	d := time.Duration(*a)
	if d == 0 {
		return "0"
	}
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
func (a *ageFlag) Type() string { return "age" }
