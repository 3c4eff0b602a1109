package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
	"github.com/federation-gateway/gateway/shared/outbound"
)

// Defaults for the zero values of Options.
const (
	DefaultConcurrency    = 8
	DefaultMaxCardBytes   = 1 << 20
	DefaultMaxPageBytes   = 8 << 20
	DefaultRetries        = 3
	DefaultRetryBase      = 100 * time.Millisecond
	DefaultRequestTimeout = 10 * time.Second
	DefaultDeadlineMargin = 2 * time.Second
	DefaultMaxPages       = 1000
)

// Page size limits of the AgentVault APIs (docs/architecture.md, "External contracts"); a
// larger Options.PageSize is lowered to them.
const (
	MaxPageSizeV1 = 250
	MaxPageSizeV2 = 1000
)

// Options tunes a registry's Source. Every zero value means its default.
type Options struct {
	// PageSize is the listing page size; zero means the kind's maximum.
	PageSize int
	// Concurrency is how many card documents are fetched at once (DefaultConcurrency).
	Concurrency int
	// MaxCardBytes and MaxPageBytes bound a card document and a listing page (or a static
	// document): a registry cannot make the gateway buffer more than this per request.
	MaxCardBytes int64
	MaxPageBytes int64
	// Retries is how many times a request is retried after a 5xx, a 429, a timeout or a
	// connection error, never after another 4xx (DefaultRetries; negative for none).
	Retries int
	// RetryBase is the first backoff; each retry doubles it, with jitter.
	RetryBase time.Duration
	// RequestTimeout bounds one attempt of one request.
	RequestTimeout time.Duration
	// DeadlineMargin is how close to ctx's deadline Fetch stops starting card fetches (and
	// AgentVault v2 listing pages), so the sync keeps time to record what it got.
	DeadlineMargin time.Duration
	// MaxPages bounds the pages of one listing whose end the registry does not announce.
	MaxPages int
	// Credential is the registry's API credential, read from Secrets Manager by the caller.
	// AgentVault v1 gets it as X-Api-Key, the other kinds as a Bearer token (a value that
	// already names its scheme, such as "Basic ...", is sent as is). Empty: none is sent.
	Credential string
}

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Concurrency, DefaultConcurrency)
	def(&o.MaxPages, DefaultMaxPages)
	if o.MaxCardBytes <= 0 {
		o.MaxCardBytes = DefaultMaxCardBytes
	}
	if o.MaxPageBytes <= 0 {
		o.MaxPageBytes = DefaultMaxPageBytes
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.RetryBase <= 0 {
		o.RetryBase = DefaultRetryBase
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.DeadlineMargin <= 0 {
		o.DeadlineMargin = DefaultDeadlineMargin
	}
	return o
}

// New returns the directory.Source for the registry's kind. httpClient should come from
// outbound.NewClient, which keeps registry URLs and their redirects off private networks.
// Errors: EINVALID (an unknown kind, a URL that is not absolute, no HTTP client).
func New(reg federation.Registry, httpClient *http.Client, opts Options) (directory.Source, error) {
	if httpClient == nil {
		return nil, federation.Errorf(federation.EINVALID, "registry %q: no HTTP client", reg.ID)
	}
	opts = opts.withDefaults()
	g := &getter{registry: reg.ID, opts: opts, client: withoutCredentialsAcrossHosts(httpClient)}
	if opts.Credential != "" {
		g.authHeader, g.authValue = "Authorization", opts.Credential
		if !strings.Contains(opts.Credential, " ") {
			g.authValue = "Bearer " + opts.Credential
		}
		if reg.Kind == federation.KindAgentVault {
			g.authHeader, g.authValue = "X-Api-Key", opts.Credential
		}
	}

	switch reg.Kind {
	case federation.KindAgentVault, federation.KindAgentVaultFederation:
		base, err := parseBase(reg.ID, reg.URL)
		if err != nil {
			return nil, err
		}
		if base.RawQuery != "" || base.Fragment != "" {
			return nil, federation.Errorf(federation.EINVALID, "registry %q: an AgentVault URL has no query or fragment", reg.ID)
		}
		if reg.Kind == federation.KindAgentVault {
			return &agentVault{g: g, base: base, pageSize: pageSize(opts.PageSize, MaxPageSizeV1)}, nil
		}
		return &agentVaultFederation{g: g, base: base, pageSize: pageSize(opts.PageSize, MaxPageSizeV2)}, nil
	case federation.KindA2A:
		if len(reg.Agents) == 0 {
			return nil, federation.Errorf(federation.EINVALID, "registry %q: an a2a registry lists its agents' base URLs", reg.ID)
		}
		g.header, g.fullURLs = a2aHeader, true
		c := &a2aAgents{g: g, agents: make([]a2aAgent, 0, len(reg.Agents))}
		seen := map[string]bool{}
		for _, raw := range reg.Agents {
			base, err := parseBase(reg.ID, raw)
			if err != nil {
				return nil, err
			}
			id := strings.TrimRight(raw, "/")
			if seen[id] {
				continue
			}
			seen[id] = true
			c.agents = append(c.agents, a2aAgent{id: id, card: base.JoinPath(".well-known", "agent-card.json"), web: webDID(base)})
		}
		return c, nil
	case federation.KindStatic:
		u, err := parseBase(reg.ID, reg.URL)
		if err != nil {
			return nil, err
		}
		return &staticDocument{g: g, url: u}, nil
	default:
		return nil, federation.Errorf(federation.EINVALID, "registry %q: unknown kind %q", reg.ID, reg.Kind)
	}
}

func pageSize(n, limit int) int {
	if n <= 0 || n > limit {
		return limit
	}
	return n
}

func parseBase(registry, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, federation.Errorf(federation.EINVALID, "registry %q: %q is not an absolute http(s) URL", registry, raw)
	}
	return u, nil
}

// withoutCredentialsAcrossHosts returns a copy of c that drops the credential headers when
// a redirect leaves the host they were meant for. net/http drops Authorization on such a
// redirect, but not X-Api-Key, which it cannot know is a secret.
func withoutCredentialsAcrossHosts(c *http.Client) *http.Client {
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host {
			req.Header.Del("X-Api-Key")
			req.Header.Del("Authorization")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 { // net/http's own limit, which a set CheckRedirect replaces
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

// getter makes a registry's HTTP requests: credentials, limits, retries and the errors
// that name the registry.
type getter struct {
	registry   string
	client     *http.Client
	opts       Options
	authHeader string
	authValue  string
	header     http.Header // sent with every request (A2A-Version)
	// fullURLs names the whole URL, not only its path, in errors: an a2a registry's
	// requests go to many hosts.
	fullURLs bool
}

// what names a request in errors.
func (g *getter) what(u *url.URL) string {
	if g.fullURLs {
		v := *u
		v.RawQuery, v.Fragment = "", ""
		return "GET " + v.Redacted()
	}
	return "GET " + u.EscapedPath()
}

// response is what get returns of an answer the caller has to interpret: a 2xx with its
// body, a 304, or a 404.
type response struct {
	status int
	header http.Header
	body   []byte
}

// session counts one Fetch's requests and collects its problems. Card fetches run
// concurrently, hence the atomics and the lock.
type session struct {
	requests atomic.Int64
	skipped  atomic.Int64
	pages    int

	mu       sync.Mutex
	problems []string
	dropped  int
}

// maxProblems keeps Listing.Problems readable (and storable) when a registry serves
// thousands of bad entries: the rest are counted, not listed.
const maxProblems = 20

func (s *session) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.problems) < maxProblems {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	} else {
		s.dropped++
	}
}

func (s *session) skip(format string, args ...any) {
	s.skipped.Add(1)
	s.problem(format, args...)
}

// finish copies the counters into l.
func (s *session) finish(l *directory.Listing) {
	l.Requests, l.Pages, l.Skipped = int(s.requests.Load()), s.pages, int(s.skipped.Load())
	s.mu.Lock()
	defer s.mu.Unlock()
	l.Problems = append([]string(nil), s.problems...)
	if s.dropped > 0 {
		l.Problems = append(l.Problems, fmt.Sprintf("and %d more problems", s.dropped))
	}
}

// nearDeadline reports whether ctx ends within the margin: work started now would likely
// be cut off, and the sync needs the rest of its time to record what was fetched.
func (g *getter) nearDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < g.opts.DeadlineMargin
}

// get GETs u, retrying what is worth retrying, and returns a 2xx (its body at most limit
// bytes), a 304 or a 404. Anything else is an error naming the registry and the path:
// EUNAVAILABLE, or the guard's EINVALID.
func (g *getter) get(ctx context.Context, s *session, u *url.URL, header http.Header, limit int64) (*response, error) {
	what := g.what(u)
	for attempt := 0; ; attempt++ {
		s.requests.Add(1)
		resp, retryAfter, err := g.attempt(ctx, u, header, limit, what)
		if err == nil {
			return resp, nil
		}
		if retryAfter < 0 || attempt >= g.opts.Retries {
			if retryAfter >= 0 && attempt > 0 {
				return nil, fmt.Errorf("%w (%d attempts)", err, attempt+1)
			}
			return nil, err
		}
		// Jitter within [d/2, d], so that the retries of many syncs do not arrive in step.
		d := g.opts.RetryBase << min(attempt, 20)
		if d <= 0 || d > maxBackoff {
			d = maxBackoff
		}
		d = d/2 + rand.N(d/2+1)
		d = max(d, retryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return nil, fmt.Errorf("%w (%d attempts; no time left to retry)", err, attempt+1)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (%d attempts; stopped: %w)", err, attempt+1, ctx.Err())
		case <-t.C:
		}
	}
}

// attempt makes one request. retryAfter is negative when the error is not worth a retry,
// and otherwise the least wait the registry asked for (zero when it did not say).
func (g *getter) attempt(parent context.Context, u *url.URL, header http.Header, limit int64, what string) (resp *response, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(parent, g.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, -1, federation.Wrap(federation.EINTERNAL, err, fmt.Sprintf("registry %q: %s", g.registry, what))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "federation-gateway")
	for k, v := range g.header {
		req.Header[k] = v
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if g.authHeader != "" {
		req.Header.Set(g.authHeader, g.authValue)
	}

	hr, err := g.client.Do(req)
	if err != nil {
		return nil, retryable(parent, err), g.transportError(ctx, err, what)
	}
	defer hr.Body.Close()

	switch {
	case hr.StatusCode == http.StatusNotModified, hr.StatusCode == http.StatusNotFound:
		drain(hr.Body)
		return &response{status: hr.StatusCode, header: hr.Header}, 0, nil
	case hr.StatusCode >= 200 && hr.StatusCode < 300:
	case hr.StatusCode == http.StatusTooManyRequests || hr.StatusCode >= 500:
		drain(hr.Body)
		return nil, parseRetryAfter(hr.Header.Get("Retry-After")),
			federation.Errorf(federation.EUNAVAILABLE, "registry %q: %s: %s", g.registry, what, hr.Status)
	default:
		drain(hr.Body)
		return nil, -1, federation.Errorf(federation.EUNAVAILABLE, "registry %q: %s: %s", g.registry, what, hr.Status)
	}

	tooLarge := federation.Wrap(federation.EUNAVAILABLE, unusable{errTooLarge},
		fmt.Sprintf("registry %q: %s: the response is larger than the limit of %s", g.registry, what, byteSize(limit)))
	if hr.ContentLength > limit {
		return nil, -1, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(hr.Body, limit+1))
	if err != nil {
		return nil, retryable(parent, err), g.transportError(ctx, err, what+": reading the response")
	}
	if int64(len(body)) > limit {
		return nil, -1, tooLarge
	}
	return &response{status: hr.StatusCode, header: hr.Header, body: body}, 0, nil
}

// retryable says whether a transport error is worth another attempt: a timeout of this
// attempt or a connection failure, not a refusal of the guard, a certificate the
// registry will present again, or the end of the caller's own context.
func retryable(parent context.Context, err error) time.Duration {
	var ferr *federation.Error
	var certErr *tls.CertificateVerificationError
	if parent.Err() != nil || errors.As(err, &ferr) || errors.As(err, &certErr) {
		return -1
	}
	return 0
}

// transportError names the registry and says what went wrong in a few caller-safe words
// (see cause): the sync shows it as the registry's last error. An error of the outbound
// guard keeps its code (EINVALID for a refused address) and its cause (outbound.IsRefused
// still holds).
func (g *getter) transportError(attemptCtx context.Context, err error, what string) error {
	var ferr *federation.Error
	if errors.As(err, &ferr) {
		return &federation.Error{Code: ferr.Code, Message: fmt.Sprintf("registry %q: %s: %s", g.registry, what, ferr.Message), Err: ferr.Err}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(attemptCtx.Err(), context.DeadlineExceeded) {
		return federation.Wrap(federation.EUNAVAILABLE, err, fmt.Sprintf("registry %q: %s timed out after %s", g.registry, what, g.opts.RequestTimeout))
	}
	return federation.Wrap(federation.EUNAVAILABLE, err, fmt.Sprintf("registry %q: %s failed: %s", g.registry, what, cause(err)))
}

// cause names what a transport error is, in words that show no address, host name,
// header or credential: the request's URL, already named, is all a caller sees of where.
func cause(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var opErr *net.OpError
	var recordHeader tls.RecordHeaderError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the host"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "the name does not resolve"
	case errors.As(err, &dnsErr):
		return "the name could not be resolved"
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &hostname), errors.As(err, &invalid):
		return "its TLS certificate is not trusted"
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert from the registry: its text is the alert's name.
		return "it refused the TLS handshake (" + opErr.Err.Error() + ")"
	case errors.As(err, &recordHeader):
		return "it does not speak TLS"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection closed before the answer was complete"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	}
	return "the connection failed"
}

// decodeError is the error of a response that is not the registry's contract.
func (g *getter) decodeError(u *url.URL, expected string, err error) error {
	return federation.Wrap(federation.EUNAVAILABLE, unusable{err},
		fmt.Sprintf("registry %q: %s: the response is not %s", g.registry, g.what(u), expected))
}

// unusable marks the cause of a response the registry will serve again as it is (too
// large, not its contract): a card that gets one is skipped, not deferred, since fetching
// it again next run changes nothing.
type unusable struct{ error }

func (u unusable) Unwrap() error { return u.error }

func isUnusable(err error) bool {
	var u unusable
	return errors.As(err, &u)
}

var errTooLarge = errors.New("response too large")

// unexpected is the error of a status the caller has no use for (a 404 for a listing).
func (g *getter) unexpected(u *url.URL, status int) error {
	return federation.Errorf(federation.EUNAVAILABLE, "registry %q: %s: %d %s", g.registry, g.what(u), status, http.StatusText(status))
}

// drain reads a little of an unwanted body so the connection can be reused.
func drain(r io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10))
}

// maxRetryAfter caps how long a registry's Retry-After can hold a sync, and maxBackoff
// the wait between two attempts; beyond them the request fails and the next scheduled
// run tries again.
const (
	maxRetryAfter = 30 * time.Second
	maxBackoff    = 30 * time.Second
)

func parseRetryAfter(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs <= 0 {
		return 0
	}
	return min(time.Duration(secs)*time.Second, maxRetryAfter)
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// fetchEach calls fetch(i) for i in [0, n), at most Concurrency at once, in order. It
// starts none once ctx's deadline is within the margin or after maxFailures calls have
// failed (a registry that fails this often is down, and each failure costs its retries),
// and reports which it started.
func (g *getter) fetchEach(ctx context.Context, n int, fetch func(ctx context.Context, i int) (failed bool)) (started []bool) {
	const maxFailures = 3
	started = make([]bool, n)
	sem := make(chan struct{}, g.opts.Concurrency)
	var failures atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		if ctx.Err() != nil || g.nearDeadline(ctx) || failures.Load() >= maxFailures {
			<-sem
			break
		}
		started[i] = true
		wg.Go(func() {
			defer func() { <-sem }()
			if fetch(ctx, i) {
				failures.Add(1)
			}
		})
	}
	wg.Wait()
	return started
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// refused returns the first error among errs that the outbound guard raised: a card URL
// refused mid-run (its name now resolves to a private address) fails the whole run, as
// it is an attack or a misconfiguration, not a flaky card.
func refused(errs []error) error {
	for _, err := range errs {
		if outbound.IsRefused(err) {
			return err
		}
	}
	return nil
}
