//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// Scenario is one numbered scenario of issue 7: one row per contender.
type Scenario struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Kind "lines" marks a scenario measured in lines and bytes, not time
	// (8, rotation): its rows carry Tallies and go to a table of their own.
	Kind    string   `json:"kind,omitempty"`
	Setup   string   `json:"setup,omitempty"` // data and flags, one line
	Rows    []*Row   `json:"rows"`
	Error   string   `json:"error,omitempty"` // the scenario broke (byte mismatch, a client failed)
	Skipped string   `json:"skipped,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// Row is one contender of a scenario.
type Row struct {
	Contender string    `json:"contender"`
	Syncer    bool      `json:"syncer"` // the row the others are divided by
	Unit      string    `json:"unit"`   // "s" or "ms"
	Samples   []float64 `json:"samples"`
	Median    float64   `json:"median"`
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	// Ratio is this row's median over the syncer row's (time: above 1 means
	// syncer is faster).
	Ratio float64 `json:"ratio_to_syncer,omitempty"`
	// PayloadBytes is what one run moves, for a throughput column.
	PayloadBytes int64 `json:"payload_bytes,omitempty"`
	// PayloadFiles is how many files one run moves (small-file scenarios
	// show files/s instead of MiB/s).
	PayloadFiles int `json:"payload_files,omitempty"`
	// WireBytes are the log bytes the server received per run (scenario 3).
	WireBytes []int64 `json:"wire_bytes,omitempty"`
	RSSKiB    int64   `json:"peak_rss_kib,omitempty"`
	RSSWhat   string  `json:"peak_rss_of,omitempty"`
	Skipped   string  `json:"skipped,omitempty"`
	// Tallies are the runs of a "lines" scenario, one per round.
	Tallies []LineTally `json:"line_tallies,omitempty"`
}

// LineTally is one run of a rotation workload: what was written, and how
// many of the numbered lines the contender delivered missing or twice
// (internal/rotsim's Count).
type LineTally struct {
	Lines        int   `json:"lines_written"`
	BytesWritten int64 `json:"bytes_written"`
	Missing      int   `json:"lines_missing"`
	Duplicated   int   `json:"lines_duplicated"`      // lines found more than once
	Stray        int   `json:"lines_stray,omitempty"` // delivered lines never written (torn, merged)
	BrokenGzip   int   `json:"broken_gzip,omitempty"` // archived .gz files that do not decompress to the end
	BytesSent    int64 `json:"bytes_sent"`            // syncer: sum of bytes_sent; rsyslog: TCP bytes to the receiver
	ArchiveBytes int64 `json:"archive_bytes"`         // the archive's or the receiver's files, as stored
	Rotations    int   `json:"rotations"`
	Pushes       int   `json:"pushes,omitempty"`
	FailedPushes int   `json:"failed_pushes,omitempty"` // syncer push exit 1: some files failed
	// MissingWhere says where in the schedule the missing lines were
	// written (rsyslog rows).
	MissingWhere string `json:"missing_where,omitempty"`
}

func (s *Scenario) row(contender string, syncer bool, unit string) *Row {
	r := &Row{Contender: contender, Syncer: syncer, Unit: unit}
	s.Rows = append(s.Rows, r)
	return r
}

func (s *Scenario) failf(format string, args ...any) {
	if s.Error == "" {
		s.Error = fmt.Sprintf(format, args...)
	}
}

func (r *Row) add(v float64, rssKiB int64) {
	r.Samples = append(r.Samples, v)
	r.RSSKiB = max(r.RSSKiB, rssKiB)
}

// finish computes medians, extremes and ratios.
func (s *Scenario) finish() {
	var base *Row
	for _, r := range s.Rows {
		if len(r.Samples) == 0 {
			continue
		}
		v := append([]float64(nil), r.Samples...)
		sort.Float64s(v)
		r.Min, r.Max = v[0], v[len(v)-1]
		if n := len(v); n%2 == 1 {
			r.Median = v[n/2]
		} else {
			r.Median = (v[n/2-1] + v[n/2]) / 2
		}
		if r.Syncer && base == nil {
			base = r
		}
	}
	for _, r := range s.Rows {
		if base != nil && len(r.Samples) > 0 && base.Median > 0 {
			r.Ratio = r.Median / base.Median
		}
	}
}

func medianInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	w := append([]int64(nil), v...)
	sort.Slice(w, func(i, j int) bool { return w[i] < w[j] })
	return w[len(w)/2]
}

func fmtNum(v float64, unit string) string {
	switch {
	case unit == "ms":
		return fmt.Sprintf("%.1f ms", v)
	case v >= 100:
		return fmt.Sprintf("%.0f s", v)
	case v >= 10:
		return fmt.Sprintf("%.1f s", v)
	default:
		return fmt.Sprintf("%.2f s", v)
	}
}

func fmtBytes(n int64) string {
	f := float64(n)
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", f/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", f/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", f/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// writeMarkdown prints one table of every scenario.
func writeMarkdown(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "%s, %s; %d cores, %s RAM, kernel %s; up to %d rounds per contender, alternating; command: `%s`\n\n",
		rep.SyncerVersion, rep.Date, rep.Cores, rep.Memory, rep.Kernel, rep.Rounds, rep.Command)
	fmt.Fprintf(w, "Peers: %s. Load average (1, 5, 15 min) at the start: %s, at the end: %s.\n\n", strings.Join(rep.Peers, ", "), rep.LoadStart, rep.LoadEnd)
	writeTimesTable(w, rep)
	writeLinesTable(w, rep)
	for _, s := range rep.Scenarios {
		if s.Setup != "" {
			fmt.Fprintf(w, "- %s: %s\n", s.ID, s.Setup)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "- %s: %s\n", s.ID, n)
		}
	}
}

// writeTimesTable prints the scenarios measured in time, if any.
func writeTimesTable(w io.Writer, rep *Report) {
	timed := false
	for _, s := range rep.Scenarios {
		timed = timed || s.Kind != "lines"
	}
	if !timed {
		return
	}
	fmt.Fprintln(w, "| # | scenario | contender | median | min .. max (runs) | ÷ syncer | rate / bytes sent | peak RSS |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
	var scs []*Scenario
	for _, s := range rep.Scenarios {
		if s.Kind != "lines" {
			scs = append(scs, s)
		}
	}
	eachRow(w, scs, func(s *Scenario, r *Row, lead string) bool {
		if len(r.Samples) == 0 {
			return false
		}
		ratio := ""
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		extra := ""
		switch {
		case len(r.WireBytes) > 0:
			extra = fmtBytes(medianInt(r.WireBytes))
		case r.PayloadFiles > 0 && r.Median > 0:
			extra = fmt.Sprintf("%.0f files/s", float64(r.PayloadFiles)/r.Median)
		case r.PayloadBytes > 0 && r.Median > 0 && r.Unit == "s":
			extra = fmt.Sprintf("%.0f MiB/s", float64(r.PayloadBytes)/(1<<20)/r.Median)
		}
		rss := ""
		if r.RSSKiB > 0 {
			rss = fmt.Sprintf("%.0f MiB", math.Round(float64(r.RSSKiB)/1024))
			if r.RSSWhat != "" {
				rss += " (" + r.RSSWhat + ")"
			}
		}
		fmt.Fprintf(w, "%s | %s | %s .. %s (%d) | %s | %s | %s |\n", lead,
			fmtNum(r.Median, r.Unit), fmtNum(r.Min, r.Unit), fmtNum(r.Max, r.Unit), len(r.Samples), ratio, extra, rss)
		return true
	})
	fmt.Fprintln(w)
	fmt.Fprintln(w, "÷ syncer: the row's median time over syncer's (above 1: syncer is faster). Peak RSS: the client process, or the server / mount where named.")
	fmt.Fprintln(w)
}

// writeLinesTable prints the scenarios measured in lines (8, rotation), if
// any: lines missing and duplicated (target 0) and bytes sent and archived
// over bytes written (target 1.00), as median (min..max) over the runs.
func writeLinesTable(w io.Writer, rep *Report) {
	var scs []*Scenario
	for _, s := range rep.Scenarios {
		if s.Kind == "lines" {
			scs = append(scs, s)
		}
	}
	if len(scs) == 0 {
		return
	}
	fmt.Fprintln(w, "| # | rotation | contender | lines missing | lines duplicated | bytes sent ÷ written | archive ÷ written | runs |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
	eachRow(w, scs, func(s *Scenario, r *Row, lead string) bool {
		if len(r.Tallies) == 0 {
			return false
		}
		var miss, dup []float64
		var sent, arch []float64
		for _, t := range r.Tallies {
			miss = append(miss, float64(t.Missing))
			dup = append(dup, float64(t.Duplicated))
			if t.BytesWritten > 0 {
				sent = append(sent, float64(t.BytesSent)/float64(t.BytesWritten))
				arch = append(arch, float64(t.ArchiveBytes)/float64(t.BytesWritten))
			}
		}
		fmt.Fprintf(w, "%s | %s | %s | %s | %s | %d |\n", lead,
			fmtSpread(miss, "%.0f"), fmtSpread(dup, "%.0f"), fmtSpread(sent, "%.2f"), fmtSpread(arch, "%.2f"), len(r.Tallies))
		return true
	})
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Rotation: lines missing are written lines found nowhere in what the contender delivered, lines duplicated those found more than once (target 0 for both); bytes over bytes written, target 1.00. Median (min..max) over the runs.")
	fmt.Fprintln(w)
}

// eachRow writes the rows of scs that every table has (a skipped or failed
// scenario, a skipped contender) and calls row for each other contender
// with the cells that lead its line: "| id | title | contender", the title
// on the scenario's first row only, syncer's name in bold. row reports
// whether it wrote a line.
func eachRow(w io.Writer, scs []*Scenario, row func(s *Scenario, r *Row, lead string) bool) {
	// Globs ('**/*.log') in a name would end the bold early; a '|' a cell.
	esc := strings.NewReplacer("*", `\*`, "|", `\|`)
	for _, s := range scs {
		title := strings.ReplaceAll(s.Title, "|", `\|`) // "find | wc -l" is one cell
		if s.Skipped != "" {
			fmt.Fprintf(w, "| %s | %s | skipped: %s | | | | | |\n", s.ID, title, s.Skipped)
			continue
		}
		if s.Error != "" {
			fmt.Fprintf(w, "| %s | %s | **FAILED: %s** | | | | | |\n", s.ID, title, oneLine(s.Error))
		}
		for _, r := range s.Rows {
			name := esc.Replace(r.Contender)
			if r.Syncer {
				name = "**" + name + "**"
			}
			lead := fmt.Sprintf("| %s | %s | %s", s.ID, title, name)
			if r.Skipped != "" {
				fmt.Fprintf(w, "%s | skipped: %s | | | | |\n", lead, r.Skipped)
				title = ""
				continue
			}
			if row(s, r, lead) {
				title = ""
			}
		}
	}
}

// fmtSpread is the median of v, with min..max when they differ in format f.
func fmtSpread(v []float64, f string) string {
	if len(v) == 0 {
		return ""
	}
	w := append([]float64(nil), v...)
	sort.Float64s(w)
	med := w[len(w)/2]
	if len(w)%2 == 0 {
		med = (w[len(w)/2-1] + w[len(w)/2]) / 2
	}
	lo, hi := fmt.Sprintf(f, w[0]), fmt.Sprintf(f, w[len(w)-1])
	if lo == hi {
		return lo
	}
	return fmt.Sprintf(f+" (%s..%s)", med, lo, hi)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// Report is the JSON results file.
type Report struct {
	Date          string      `json:"date"`
	Command       string      `json:"command"`
	Quick         bool        `json:"quick"`
	Rounds        int         `json:"rounds"`
	Cores         int         `json:"cores"`
	Memory        string      `json:"memory"`
	Kernel        string      `json:"kernel"`
	SyncerVersion string      `json:"syncer_version"`
	Peers         []string    `json:"peers"`
	LoadStart     string      `json:"load_average_start"`
	LoadEnd       string      `json:"load_average_end"`
	Scenarios     []*Scenario `json:"scenarios"`
	Failed        bool        `json:"failed"`
}

func writeJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
