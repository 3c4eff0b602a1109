package devstack

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
)

// API Gateway's limits of a WebSocket API.
const (
	wsFrameLimit   = 32 << 10  // a frame
	wsMessageLimit = 128 << 10 // a message (and a @connections post)
	// DefaultWebSocketIdle and DefaultWebSocketMaxAge close a connection that sent nothing
	// for 10 minutes, and any connection after 2 hours.
	DefaultWebSocketIdle   = 10 * time.Minute
	DefaultWebSocketMaxAge = 2 * time.Hour
	// wsQueue is how many posted messages wait for a connection that reads slowly; a
	// connection that falls further behind is closed, as API Gateway drops a client that
	// cannot keep up.
	wsQueue = 1024
)

// wsServer serves a template's WebSocket API as API Gateway does:
//
//   - a handshake at ws://<addr>/<stage> invokes the $connect route's function with the
//     APIGatewayWebsocketProxyRequest API Gateway sends (headers and query string
//     included); a 2xx answer accepts the connection, with the Sec-WebSocket-Protocol the
//     function answered, anything else refuses it with that status;
//   - every message is routed by the API's RouteSelectionExpression
//     ($request.body.<field>): to its route, else $default, else an error message
//     ({"message":"Forbidden",...}); a function that fails makes {"message":"Internal
//     server error",...}; the functions' answers are not sent (no route responses);
//   - a connection's messages are handled one after the other, in order (API Gateway
//     does not promise that);
//   - when a connection ends, for whatever reason, $disconnect is invoked;
//   - limits: a frame over 32 KB or a message over 128 KB closes the connection with
//     1009; a connection that sends nothing for idle, or is older than maxAge, is closed
//     with 1001 (10 minutes and 2 hours by default, shorter for tests);
//   - the @connections management API at http://<addr>/<stage>/@connections/{id}: POST
//     sends a message (410 GoneException for a connection that is gone, 413 over 128 KB),
//     GET describes it, DELETE closes it; requests must be signed (SigV4, service
//     execute-api) with the local credentials, as IAM would require.
type wsServer struct {
	api    WebSocketAPI
	invoke func(ctx context.Context, function string, payload []byte) ([]byte, error)
	logs   *logSink

	limitsMu sync.Mutex
	idle     time.Duration
	maxAge   time.Duration

	stats   WebSocketStats
	statsMu sync.Mutex

	srv   *http.Server
	ln    net.Listener
	url   string // ws://host:port/stage
	ctx   context.Context
	stop  context.CancelFunc
	mu    sync.Mutex
	conns map[string]*wsConn
	wg    sync.WaitGroup
}

// wsConn is one client connection.
type wsConn struct {
	id          string
	c           *websocket.Conn
	connectedAt time.Time
	lastActive  atomic.Int64 // unix nanoseconds of the last message received
	sourceIP    string
	userAgent   string
	out         chan []byte
	done        chan struct{} // closed when the connection has ended
	closeOnce   sync.Once
	closeCode   websocket.StatusCode
	closeReason string
	sniffer     *frameSniffer
	idle        time.Duration
	maxAge      time.Duration
}

// WebSocketStats counts what the WebSocket API served, for tests and benchmarks: what API
// Gateway bills (messages both ways, each of up to 32 KB; connection time) and what the
// functions asked of @connections.
type WebSocketStats struct {
	Connections int           // accepted
	Received    int           // messages from clients
	Posts       int           // @connections POSTs that reached a connection
	Deletes     int           // @connections DELETEs
	Gone        int           // @connections requests answered 410
	Connected   time.Duration // summed over connections that ended
}

// WebSocketStats returns the WebSocket API's counts so far.
func (s *Stack) WebSocketStats() WebSocketStats {
	if s.ws == nil {
		return WebSocketStats{}
	}
	s.ws.statsMu.Lock()
	defer s.ws.statsMu.Unlock()
	return s.ws.stats
}

func (s *wsServer) count(f func(*WebSocketStats)) {
	s.statsMu.Lock()
	f(&s.stats)
	s.statsMu.Unlock()
}

// SetWebSocketLimits changes the idle and maximum age limits of the connections made from
// now on (tests shorten them to seconds); zero keeps a limit as it is.
func (s *Stack) SetWebSocketLimits(idle, maxAge time.Duration) {
	if s.ws == nil {
		return
	}
	s.ws.limitsMu.Lock()
	defer s.ws.limitsMu.Unlock()
	if idle > 0 {
		s.ws.idle = idle
	}
	if maxAge > 0 {
		s.ws.maxAge = maxAge
	}
}

// listenWebSocket binds the address of the template's WebSocket API, if it has one, and
// returns the functions with their environment pointed at it.
func (s *Stack) listenWebSocket(opts Options, functions []Function) ([]Function, error) {
	if opts.WebSocketAddr == "-" || len(s.Template.WebSocketAPIs) == 0 {
		return functions, nil
	}
	if len(s.Template.WebSocketAPIs) > 1 {
		return nil, errors.New("the dev stack serves one WebSocket API; the template declares more")
	}
	ws, err := listenWebSocket(s.Template.WebSocketAPIs[0], opts.WebSocketAddr, opts.WebSocketIdle, opts.WebSocketMaxAge, s.Invoke, s.logs)
	if err != nil {
		return nil, err
	}
	s.ws, s.WebSocketURL = ws, ws.url
	return rewriteWebSocketURLs(functions, ws.api, ws.managementURL()), nil
}

// listenWebSocket binds the WebSocket API's address, so its URL is known before the
// functions start (their environment points at it); serve starts serving.
func listenWebSocket(api WebSocketAPI, addr string, idle, maxAge time.Duration, invoke func(context.Context, string, []byte) ([]byte, error), logs *logSink) (*wsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("WebSocket API: listen on %s: %w", addr, err)
	}
	if idle <= 0 {
		idle = DefaultWebSocketIdle
	}
	if maxAge <= 0 {
		maxAge = DefaultWebSocketMaxAge
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &wsServer{api: api, invoke: invoke, logs: logs, idle: idle, maxAge: maxAge, ln: ln, ctx: ctx, stop: stop,
		url: "ws://" + ln.Addr().String() + "/" + api.Stage, conns: map[string]*wsConn{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/{stage}/@connections/{id}", s.manage)
	mux.HandleFunc("/", s.handshake)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// managementURL is the @connections API's base URL: what the functions' SDK clients use.
func (s *wsServer) managementURL() string {
	return "http://" + s.ln.Addr().String() + "/" + s.api.Stage
}

func (s *wsServer) serve() {
	go func() { _ = s.srv.Serve(s.ln) }()
}

// close ends every connection and stops serving.
func (s *wsServer) close() {
	s.stop()
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.end(websocket.StatusGoingAway, "Going away")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = s.srv.Shutdown(ctx)
	cancel()
	_ = s.ln.Close() // Shutdown leaves it open when serve never ran
	s.wg.Wait()
}

func (s *wsServer) handshake(w http.ResponseWriter, r *http.Request) {
	if strings.Trim(r.URL.Path, "/") != s.api.Stage || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
		return
	}
	id := newConnectionID()
	reqID := newRequestID()
	now := time.Now()
	ev := s.event(id, "$connect", "CONNECT", reqID, now, now)
	ev.Headers, ev.MultiValueHeaders = map[string]string{}, map[string][]string{}
	for k, v := range r.Header {
		ev.Headers[k] = strings.Join(v, ",")
		ev.MultiValueHeaders[k] = v
	}
	ev.Headers["Host"], ev.MultiValueHeaders["Host"] = r.Host, []string{r.Host}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters, ev.MultiValueQueryStringParameters = map[string]string{}, map[string][]string(q)
		for k, v := range q {
			ev.QueryStringParameters[k] = v[len(v)-1]
		}
	}
	ev.RequestContext.Identity.SourceIP, ev.RequestContext.Identity.UserAgent = sourceIP(r.RemoteAddr), r.UserAgent()
	ev.RequestContext.DomainName = r.Host

	out, err := s.call(r.Context(), "$connect", ev)
	if err != nil {
		s.logs.printf("ws    | $connect %s: %v\n", id, err)
		writeAPIError(w, http.StatusInternalServerError, "", "Internal server error")
		return
	}
	var resp events.APIGatewayProxyResponse
	if len(out) > 0 && string(out) != "null" {
		if err := json.Unmarshal(out, &resp); err != nil {
			writeAPIError(w, http.StatusInternalServerError, "", "Internal server error")
			return
		}
	} else {
		resp.StatusCode = http.StatusOK
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		s.logs.printf("ws    | $connect %s refused: %d\n", id, resp.StatusCode)
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.WriteString(w, resp.Body)
		return
	}
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled}
	for k, v := range resp.Headers {
		if strings.EqualFold(k, "Sec-WebSocket-Protocol") {
			opts.Subprotocols = []string{v}
		}
	}
	sniffer := &frameSniffer{}
	c, err := websocket.Accept(sniffingWriter{w, sniffer}, r, opts)
	if err != nil {
		s.logs.printf("ws    | accept %s: %v\n", id, err)
		return
	}
	c.SetReadLimit(wsMessageLimit)
	conn := &wsConn{id: id, c: c, connectedAt: now, sourceIP: sourceIP(r.RemoteAddr), userAgent: r.UserAgent(),
		out: make(chan []byte, wsQueue), done: make(chan struct{}), sniffer: sniffer}
	s.limitsMu.Lock()
	conn.idle, conn.maxAge = s.idle, s.maxAge
	s.limitsMu.Unlock()
	conn.lastActive.Store(now.UnixNano())
	s.mu.Lock()
	s.conns[id] = conn
	s.mu.Unlock()
	s.count(func(st *WebSocketStats) { st.Connections++ })
	s.logs.printf("ws    | %s connected\n", id)
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.write(conn) }()
	go func() { defer s.wg.Done(); s.read(conn) }()
}

// read receives a connection's messages until it ends, then invokes $disconnect.
func (s *wsServer) read(conn *wsConn) {
	timers := make(chan struct{})
	go s.watch(conn, timers)
	for {
		typ, data, err := conn.c.Read(s.ctx)
		if err == nil && conn.sniffer.tooBig.Load() {
			conn.end(websocket.StatusMessageTooBig, "Message too big")
			break
		}
		if err != nil {
			code, reason := websocket.CloseStatus(err), ""
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				reason = ce.Reason
			}
			if errors.Is(err, websocket.ErrMessageTooBig) {
				code, reason = websocket.StatusMessageTooBig, "Message too big"
			}
			if code == -1 {
				code = websocket.StatusAbnormalClosure
			}
			conn.end(code, reason)
			break
		}
		conn.lastActive.Store(time.Now().UnixNano())
		s.count(func(st *WebSocketStats) { st.Received++ })
		s.message(conn, typ, data)
	}
	close(timers)
	s.mu.Lock()
	delete(s.conns, conn.id)
	s.mu.Unlock()
	s.count(func(st *WebSocketStats) { st.Connected += time.Since(conn.connectedAt) })
	if s.ctx.Err() != nil {
		return // the stack is stopping: its functions too
	}
	now := time.Now()
	ev := s.event(conn.id, "$disconnect", "DISCONNECT", newRequestID(), conn.connectedAt, now)
	ev.RequestContext.DisconnectStatusCode = int64(conn.closeCode)
	reason := conn.closeReason
	ev.RequestContext.DisconnectReason = &reason
	ev.RequestContext.Identity.SourceIP, ev.RequestContext.Identity.UserAgent = conn.sourceIP, conn.userAgent
	if _, err := s.call(context.Background(), "$disconnect", ev); err != nil {
		s.logs.printf("ws    | $disconnect %s: %v\n", conn.id, err)
	}
	s.logs.printf("ws    | %s disconnected (%d %s)\n", conn.id, conn.closeCode, conn.closeReason)
}

// watch closes a connection that is idle too long or too old.
func (s *wsServer) watch(conn *wsConn, stop <-chan struct{}) {
	age := time.NewTimer(time.Until(conn.connectedAt.Add(conn.maxAge)))
	defer age.Stop()
	idle := time.NewTimer(conn.idle)
	defer idle.Stop()
	for {
		select {
		case <-stop:
			return
		case <-age.C:
			conn.end(websocket.StatusGoingAway, "Going away: connection duration limit")
			return
		case <-idle.C:
			last := time.Unix(0, conn.lastActive.Load())
			if wait := time.Until(last.Add(conn.idle)); wait > 0 {
				idle.Reset(wait)
				continue
			}
			conn.end(websocket.StatusGoingAway, "Going away: idle timeout")
			return
		}
	}
}

// write sends what was posted to a connection, in order.
func (s *wsServer) write(conn *wsConn) {
	for {
		select {
		case <-conn.done:
			return
		case msg := <-conn.out:
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			err := conn.c.Write(ctx, websocket.MessageText, msg)
			cancel()
			if err != nil {
				conn.end(websocket.StatusInternalError, "write failed")
				return
			}
		}
	}
}

// end closes a connection once, with the code and reason its $disconnect reports.
func (c *wsConn) end(code websocket.StatusCode, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		close(c.done)
		go func() {
			if code == websocket.StatusAbnormalClosure {
				_ = c.c.CloseNow()
				return
			}
			_ = c.c.Close(code, reason)
		}()
	})
}

// message routes one message to its route's function.
func (s *wsServer) message(conn *wsConn, typ websocket.MessageType, data []byte) {
	reqID := newRequestID()
	route := "$default"
	if typ == websocket.MessageText {
		if key, ok := selectRoute(s.api.RouteSelection, data); ok {
			if _, declared := s.api.Routes[key]; declared {
				route = key
			}
		}
	}
	if _, ok := s.api.Routes[route]; !ok {
		s.reply(conn, map[string]string{"message": "Forbidden", "connectionId": conn.id, "requestId": reqID})
		return
	}
	ev := s.event(conn.id, route, "MESSAGE", reqID, conn.connectedAt, time.Now())
	ev.RequestContext.MessageID = newRequestID()
	ev.RequestContext.Identity.SourceIP, ev.RequestContext.Identity.UserAgent = conn.sourceIP, conn.userAgent
	if typ == websocket.MessageText {
		ev.Body = string(data)
	} else {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(data), true
	}
	if _, err := s.call(s.ctx, route, ev); err != nil && s.ctx.Err() == nil {
		s.logs.printf("ws    | %s %s: %v\n", route, conn.id, err)
		s.reply(conn, map[string]string{"message": "Internal server error", "connectionId": conn.id, "requestId": reqID})
	}
}

func (s *wsServer) reply(conn *wsConn, v any) {
	b, _ := json.Marshal(v)
	select {
	case conn.out <- b:
	default:
	}
}

// selectRoute evaluates a RouteSelectionExpression of the form $request.body.<path> on a
// message: the route key is the string at that path of the message's JSON.
func selectRoute(expr string, body []byte) (string, bool) {
	path, ok := strings.CutPrefix(expr, "$request.body.")
	if !ok {
		return "", false
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return "", false
	}
	for _, field := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		v = m[field]
	}
	key, ok := v.(string)
	return key, ok && key != ""
}

// event is the part of a route's event common to all routes.
func (s *wsServer) event(id, route, eventType, reqID string, connectedAt, at time.Time) events.APIGatewayWebsocketProxyRequest {
	return events.APIGatewayWebsocketProxyRequest{RequestContext: events.APIGatewayWebsocketProxyRequestContext{
		RouteKey: route, EventType: eventType, ConnectionID: id, RequestID: reqID, ExtendedRequestID: reqID,
		Stage: s.api.Stage, APIID: s.api.ID, AccountID: localAccountID, MessageDirection: "IN",
		ConnectedAt: connectedAt.UnixMilli(), RequestTimeEpoch: at.UnixMilli(),
		RequestTime: at.UTC().Format("02/Jan/2006:15:04:05 -0700"), DomainName: strings.TrimPrefix(s.url, "ws://"),
	}}
}

// call invokes a route's function with its event.
func (s *wsServer) call(ctx context.Context, route string, ev events.APIGatewayWebsocketProxyRequest) ([]byte, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return s.invoke(ctx, s.api.Routes[route], payload)
}

// manage serves the @connections API.
func (s *wsServer) manage(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("stage") != s.api.Stage {
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, wsMessageLimit+1))
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "BadRequestException", "could not read the request")
		return
	}
	if len(body) > wsMessageLimit {
		writeAPIError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", "Request entity too large")
		return
	}
	if refusal := checkSignature(r, body, time.Now()); refusal != "" {
		writeAPIError(w, http.StatusForbidden, "ForbiddenException", refusal)
		return
	}
	s.mu.Lock()
	conn := s.conns[r.PathValue("id")]
	s.mu.Unlock()
	if conn == nil || isDone(conn) {
		s.count(func(st *WebSocketStats) { st.Gone++ })
		writeAPIError(w, http.StatusGone, "GoneException", "")
		return
	}
	switch r.Method {
	case http.MethodPost:
		select {
		case conn.out <- body:
			s.count(func(st *WebSocketStats) { st.Posts++ })
			w.WriteHeader(http.StatusOK)
		default:
			conn.end(websocket.StatusPolicyViolation, "the client reads too slowly")
			writeAPIError(w, http.StatusGone, "GoneException", "")
		}
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"connectedAt":  conn.connectedAt.UTC().Format(time.RFC3339Nano),
			"lastActiveAt": time.Unix(0, conn.lastActive.Load()).UTC().Format(time.RFC3339Nano),
			"identity":     map[string]string{"sourceIp": conn.sourceIP, "userAgent": conn.userAgent},
		})
	case http.MethodDelete:
		s.count(func(st *WebSocketStats) { st.Deletes++ })
		conn.end(websocket.StatusNormalClosure, "")
		w.WriteHeader(http.StatusNoContent)
	default:
		writeAPIError(w, http.StatusMethodNotAllowed, "", "Method not allowed")
	}
}

func isDone(c *wsConn) bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// writeAPIError answers an API Gateway error: the SDK reads its type from
// X-Amzn-ErrorType.
func writeAPIError(w http.ResponseWriter, status int, typ, message string) {
	if typ != "" {
		w.Header().Set("X-Amzn-ErrorType", typ)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var msg any
	if message != "" {
		msg = message
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"message": msg})
}

// newConnectionID makes an ID shaped like API Gateway's (16 characters, base64, so it may
// hold / + =, which the management API's paths escape).
func newConnectionID() string {
	b := make([]byte, 11)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// frameSniffer watches the frames a client sends, as they pass to the WebSocket library,
// for one whose payload is over API Gateway's frame limit: the library checks only the
// message's.
type frameSniffer struct {
	tooBig  atomic.Bool
	header  []byte // bytes of the frame header read so far
	payload uint64 // payload bytes still to pass
}

func (f *frameSniffer) see(b []byte) {
	for len(b) > 0 {
		if f.payload > 0 {
			n := min(uint64(len(b)), f.payload)
			f.payload -= n
			b = b[n:]
			continue
		}
		f.header = append(f.header, b[0])
		b = b[1:]
		if need := frameHeaderLen(f.header); need > 0 && len(f.header) == need {
			length := uint64(f.header[1] & 0x7f)
			switch length {
			case 126:
				length = uint64(f.header[2])<<8 | uint64(f.header[3])
			case 127:
				length = 0
				for _, x := range f.header[2:10] {
					length = length<<8 | uint64(x)
				}
			}
			if length > wsFrameLimit {
				f.tooBig.Store(true)
			}
			f.payload, f.header = length, f.header[:0]
		}
	}
}

// frameHeaderLen is the length of a frame's header once its first two bytes are known,
// else 0.
func frameHeaderLen(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4 // the mask
	}
	return n
}

// sniffingWriter hands the WebSocket library a connection whose reads pass the sniffer.
type sniffingWriter struct {
	http.ResponseWriter
	sniffer *frameSniffer
}

func (w sniffingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be taken over")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The server may have read the first frames already (the 101 goes out before the
	// hijack): the library reads those bytes from brw, the rest from the connection.
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		w.sniffer.see(b)
	}
	return sniffingConn{c, w.sniffer}, brw, nil
}

type sniffingConn struct {
	net.Conn
	sniffer *frameSniffer
}

func (c sniffingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.sniffer.see(b[:n])
	return n, err
}

// rewriteWebSocketURLs points the API's execute-api URLs in the functions' environment at
// the local server: the functions reach its @connections API with the SDK's client as
// they reach API Gateway's.
func rewriteWebSocketURLs(functions []Function, api WebSocketAPI, local string) []Function {
	deployed := fmt.Sprintf("https://%s.execute-api.%s.amazonaws.com", api.ID, localRegion)
	u, _ := url.Parse(local)
	base := "http://" + u.Host
	out := make([]Function, len(functions))
	for i, fn := range functions {
		env := make(map[string]string, len(fn.Env))
		for k, v := range fn.Env {
			env[k] = strings.ReplaceAll(strings.ReplaceAll(v, deployed, base), "wss://"+strings.TrimPrefix(deployed, "https://"), "ws://"+u.Host)
		}
		fn.Env = env
		out[i] = fn
	}
	return out
}
