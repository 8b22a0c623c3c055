package main

import (
	"io"
	"log/slog"
	"strings"
)

// logOptions are serve's --log-level and --log-format.
type logOptions struct {
	Level, Format string
}

// logger builds the logger the flags ask for, writing to w.
func (o logOptions) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(o.Level) {
	case "debug":
		level = slog.LevelDebug
	case "", "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", o.Level)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(o.Format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, usageErrorf("--log-format %q: want text or json", o.Format)
}
