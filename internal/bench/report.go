package bench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Ratio is one of our figures divided by the machine's ceiling.
type Ratio struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

// Target is one published target and whether this run met it.
type Target struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// decisionRate is the phase's unlocks per second that lockctl decided on
// their credential, granted or refused: a 429 is its rate limiter's
// answer, cheaper than a decision, so the unlock target and its ratios
// leave 429s out (the rate column counts them).
func (p Phase) decisionRate() float64 {
	if p.Seconds <= 0 {
		return 0
	}
	return float64(p.OK+p.Refused) / p.Seconds
}

func (r *Report) phase(name string) (Phase, bool) {
	for _, p := range r.Phases {
		if p.Name == name {
			return p, true
		}
	}
	return Phase{}, false
}

// finish derives memory, ratios and targets from the phases.
func (b *Bench) finish(r *Report) {
	for _, p := range r.Phases {
		r.PeakRSSMB = max(r.PeakRSSMB, p.ServerRSSMB)
	}
	if b.cfg.PID > 0 {
		r.HWMMB = round(float64(peakRSS(fmt.Sprint(b.cfg.PID)))/(1<<20), 1)
	}
	ratio := func(name string, num, den float64) {
		if num > 0 && den > 0 {
			r.Ratios = append(r.Ratios, Ratio{name, round(num/den, 3)})
		}
	}
	ingMax, _ := r.phase("ingest-max")
	unlMax, _ := r.phase("unlock-max")
	ratio("ingest-max / echo", ingMax.Rate, r.EchoRate)
	ratio("ingest-max / insert-tx", ingMax.Rate, r.InsertRate)
	ratio("unlock-max / echo", unlMax.decisionRate(), r.EchoRate)
	ratio("unlock-max / insert-tx", unlMax.decisionRate(), r.InsertRate)

	pg := b.cfg.DatabaseURL != ""
	// The embedded default's throughput targets are lower: one SQLite
	// writer, and Redis inside the server's process.
	ingestWant, unlockWant := 2000.0, 2000.0
	if pg {
		ingestWant, unlockWant = 5000, 5000
	}
	if p, ok := r.phase("quiet"); ok {
		r.Targets = append(r.Targets, Target{"quiet sign-in -> usable", "p50 <= 50 ms",
			fmt.Sprintf("p50 %s ms (p99 %s) at %.0f/s", num(p.P50), num(p.P99), p.Rate), p.Errors == 0 && p.OK > 0 && p.P50 <= 50})
		if p.Email != nil {
			r.Targets = append(r.Targets, Target{"quiet sign-in -> email captured", "p50 <= 100 ms",
				fmt.Sprintf("p50 %s ms (p99 %s)", num(p.Email.P50), num(p.Email.P99)), p.Email.P50 <= 100})
		}
	}
	if p, ok := r.phase("ingest-max"); ok {
		r.Targets = append(r.Targets, Target{"ingest throughput", fmt.Sprintf(">= %.0f/s", ingestWant),
			fmt.Sprintf("%.0f/s", p.Rate), p.Rate >= ingestWant && p.Errors == 0})
	}
	perOp := func(name, label string, want float64) {
		if p, ok := r.phase(name); ok && p.CPUPerOpMs > 0 {
			got := fmt.Sprintf("%s ms", num(p.CPUPerOpMs))
			if p.StatementsPerOp > 0 {
				got += fmt.Sprintf(", %s statements", num(p.StatementsPerOp))
			}
			r.Targets = append(r.Targets, Target{label, fmt.Sprintf("<= %s ms", num(want)), got, p.CPUPerOpMs <= want})
		}
	}
	perOp("ingest-max", "CPU per ingest", 0.3)
	perOp("unlock-max", "CPU per unlock", 0.2)
	perOp("signin", "CPU per sign-in", 5)
	paced := func(name, label string, p99 float64) {
		p, ok := r.phase(name)
		if !ok {
			return
		}
		kept := p.Rate >= 0.95*p.TargetRate
		got := fmt.Sprintf("p99 %s ms at %.0f/s", num(p.P99), p.Rate)
		if p.Errors > 0 {
			got += fmt.Sprintf(", %d errors", p.Errors)
		}
		r.Targets = append(r.Targets, Target{label, fmt.Sprintf("p99 <= %.0f ms at %.0f/s", p99, p.TargetRate), got,
			kept && p.Errors == 0 && p.P99 <= p99})
	}
	paced("ingest", "webhook acknowledgement", 20)
	paced("signin", "sign-in -> usable", 300)
	paced("signout", "sign-out -> refused", 300)
	if p, ok := r.phase("unlock-max"); ok {
		rate := p.decisionRate()
		r.Targets = append(r.Targets, Target{"unlock decisions", fmt.Sprintf(">= %.0f/s", unlockWant), fmt.Sprintf("%.0f/s", rate), rate >= unlockWant && p.Errors == 0})
	}
	paced("unlock", "unlock decision", 10)
	if p, ok := r.phase("burst"); ok {
		r.Targets = append(r.Targets, Target{"front-desk burst (24 actions + 24 sign-ins)", "every round <= 1000 ms",
			fmt.Sprintf("p50 %.0f ms, max %.0f ms over %d rounds", p.P50, p.Max, p.OK+p.Errors), p.Errors == 0 && p.OK > 0 && p.Max <= 1000})
	}
	if r.PeakRSSMB > 0 {
		r.Targets = append(r.Targets, Target{"server RSS under load", "<= 150 MB", fmt.Sprintf("%.0f MB", r.PeakRSSMB), r.PeakRSSMB <= 150})
	}
	if !pg && len(r.Targets) > 0 {
		r.Notes = append(r.Notes, "embedded default (SQLite, in-process Redis): its own targets are ingest and unlock >= 2,000/s, the quiet-day latencies and the burst; the others are PostgreSQL + Redis targets shown for comparison")
	}
	for _, p := range r.Phases {
		if p.Limited > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: %d unlocks were rate limited (429) by lockctl; the rate column counts them, the unlock target does not", p.Name, p.Limited))
		}
	}
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Print writes the report as tables.
func Print(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\nlatchkey bench: %s, database %s, concurrency %d", r.URL, r.Database, r.Concurrency)
	if r.PID > 0 {
		fmt.Fprintf(w, ", server pid %d", r.PID)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tmode\tseconds\trequests\tok\trefused\tlimited\terrors\trate/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\tserver cpu\tstore cpu\tcpu/op ms\tstmts/op\tserver rss MB\tclient cpu\t")
	for _, p := range r.Phases {
		mode := p.Mode
		if p.TargetRate > 0 {
			mode = fmt.Sprintf("%.0f/s", p.TargetRate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%d\t%d\t%d\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t\n",
			p.Name, mode, p.Seconds, p.Requests, p.OK, p.Refused, p.Limited, p.Errors, p.Rate,
			fixed(p.P50), fixed(p.P95), fixed(p.P99), fixed(p.Max), opt(p.ServerCPU, "%.2f"), opt(p.StoreCPU, "%.2f"),
			opt(p.CPUPerOpMs, "%.3f"), opt(p.StatementsPerOp, "%.1f"), opt(p.ServerRSSMB, "%.0f"), p.ClientCPU)
	}
	tw.Flush()
	for _, p := range r.Phases {
		if p.Email != nil {
			fmt.Fprintf(w, "  %s email captured: p50 %s ms, p95 %s ms, p99 %s ms, max %s ms\n", p.Name, fixed(p.Email.P50), fixed(p.Email.P95), fixed(p.Email.P99), fixed(p.Email.Max))
		}
	}
	for _, p := range r.Phases {
		if p.Errors > 0 {
			var codes []string
			for k, n := range p.ErrorCodes {
				codes = append(codes, fmt.Sprintf("%s x%d", k, n))
			}
			fmt.Fprintf(w, "  %s errors: %s; first: %s\n", p.Name, strings.Join(codes, ", "), p.FirstError)
		}
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintf(w, "\nceiling: echo %.0f req/s, insert %.0f tx/s\n", r.EchoRate, r.InsertRate)
		for _, x := range r.Ratios {
			fmt.Fprintf(w, "  %-24s %.3f\n", x.Name, x.Value)
		}
	}
	if r.PeakRSSMB > 0 {
		fmt.Fprintf(w, "\nserver memory: peak RSS %.0f MB during the run (high-water mark since start %.0f MB)\n", r.PeakRSSMB, r.HWMMB)
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets:")
		for _, t := range r.Targets {
			mark := "MISSED"
			if t.Met {
				mark = "met"
			}
			fmt.Fprintf(w, "  %-26s want %-24s got %-30s %s\n", t.Name, t.Want, t.Got, mark)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func fixed(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func opt(v float64, f string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf(f, v)
}
