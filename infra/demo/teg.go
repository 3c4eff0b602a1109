package demo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/teg"
)

// GatewayAccount is the gateway's account on every demo token service.
const GatewayAccount = "did:agentvault:federation-gateway"

// TreasuryAccount receives the token service's own fees, so that the sum of all balances
// stays what it was.
const TreasuryAccount = "did:agentvault:treasury"

// Demo balances: what each demo agent and the gateway hold when the federation starts.
var (
	AgentStartBalance   = decimal.RequireFromString("1000.0")
	GatewayStartBalance = decimal.RequireFromString("10000.0")
)

// TEG is an in-process TEG token service (the AgentVault TEG layer API): accounts with
// balances, Bearer-authenticated transfers applied once per Idempotency-Key, the balance
// and the transaction history (newest first, limit/offset, start_date) of the caller's
// account. Its faults are set with SetFaults, or for the demo over HTTP (see
// Federation.control).
type TEG struct {
	// Registry is the registry whose token service it is.
	Registry string
	// Fee is the token service's fee on every transfer, paid by the sender on top of the
	// amount (0 in the demo).
	Fee decimal.Decimal

	mu       sync.Mutex
	accounts map[string]decimal.Decimal
	tokens   map[string]string // token -> account
	txs      []teg.Tx          // in the order applied
	keys     map[string]keyed  // account#key -> the first answer
	seq      int
	faults   FaultFunc
	queue    []queuedFault
	requests int
}

type keyed struct {
	hash   string
	status int
	body   []byte
}

// Fault kinds a TEG can be told to play.
const (
	FaultNone       = ""
	FaultFail       = "fail"        // answer 503 and apply nothing
	FaultReject     = "reject"      // answer 400 (the receiver's account is suspended) and apply nothing
	FaultSlow       = "slow"        // wait Delay, then serve as usual
	FaultApplyLose  = "apply-lose"  // apply the transfer, then drop the connection unanswered
	FaultApply5xx   = "apply-5xx"   // apply the transfer, then answer 502
	FaultApplyLater = "apply-later" // wait Delay (past the caller's timeout), then apply it
)

// FaultKinds lists every kind.
var FaultKinds = []string{FaultFail, FaultReject, FaultSlow, FaultApplyLose, FaultApply5xx, FaultApplyLater}

// Fault is what a TEG does to one request.
type Fault struct {
	Kind  string
	Delay time.Duration
	// After runs after a transfer is applied, before it is answered (a test kills the
	// caller's process there).
	After func()
}

// FaultRequest describes a request, for a FaultFunc to pick its fault.
type FaultRequest struct {
	Op             string // transfer, transactions, balance
	Account        string // the caller
	IdempotencyKey string
	Message        string
	Receiver       string
}

// FaultFunc picks the fault of a request; nil means none.
type FaultFunc func(FaultRequest) Fault

type queuedFault struct {
	op    string
	fault Fault
	count int
}

// NewTEG returns a token service with no accounts.
func NewTEG(registry string) *TEG {
	return &TEG{Registry: registry, Fee: decimal.Zero, accounts: map[string]decimal.Decimal{TreasuryAccount: decimal.Zero},
		tokens: map[string]string{}, keys: map[string]keyed{}}
}

// Open creates an account with a balance and returns its Bearer token. The token is
// derived from public names: it identifies a demo account, it protects nothing.
func (t *TEG) Open(account string, balance decimal.Decimal) string {
	sum := sha256.Sum256([]byte("federation-gateway demo teg " + t.Registry + " " + account))
	token := "teg-" + t.Registry + "-" + hex.EncodeToString(sum[:12])
	t.mu.Lock()
	defer t.mu.Unlock()
	t.accounts[account] = balance
	t.tokens[token] = account
	return token
}

// Issue adds amount to an account's balance (the token service's admin issuance), opening
// the account if needed; it records an issuance transaction.
func (t *TEG) Issue(account string, amount decimal.Decimal) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.accounts[account] = t.accounts[account].Add(amount)
	t.seq++
	t.txs = append(t.txs, teg.Tx{TransactionID: fmt.Sprintf("tx_%s_%06d", t.Registry, t.seq), Status: "completed", TransactionType: "issuance",
		SenderAgentID: "did:agentvault:treasury-issuer", ReceiverAgentID: account, Amount: amount.String(), FeeAmount: "0",
		Timestamp: time.Now().UTC().Format(time.RFC3339Nano), AttachedMessage: "issuance"})
}

// Token returns the Bearer token of an account, "" if it has none.
func (t *TEG) Token(account string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for tok, a := range t.tokens {
		if a == account {
			return tok
		}
	}
	return ""
}

// Balance returns an account's balance.
func (t *TEG) Balance(account string) decimal.Decimal {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.accounts[account]
}

// Balances returns every account's balance.
func (t *TEG) Balances() map[string]decimal.Decimal {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]decimal.Decimal, len(t.accounts))
	for a, b := range t.accounts {
		out[a] = b
	}
	return out
}

// Transactions returns every transaction applied, in order.
func (t *TEG) Transactions() []teg.Tx {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.txs)
}

// Requests returns how many API requests it served.
func (t *TEG) Requests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.requests
}

// SetFaults makes f pick the fault of every request; nil plays none.
func (t *TEG) SetFaults(f FaultFunc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = f
}

// Queue plays fault on the next count requests of op ("transfer", "transactions",
// "balance", or "" for any).
func (t *TEG) Queue(op string, fault Fault, count int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue = append(t.queue, queuedFault{op: op, fault: fault, count: count})
}

// ClearFaults drops the queued faults and the FaultFunc.
func (t *TEG) ClearFaults() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue, t.faults = nil, nil
}

func (t *TEG) fault(r FaultRequest) Fault {
	t.mu.Lock()
	t.requests++
	for i := range t.queue {
		q := &t.queue[i]
		if q.count > 0 && (q.op == "" || q.op == r.Op) {
			q.count--
			f := q.fault
			t.queue = slices.DeleteFunc(t.queue, func(q queuedFault) bool { return q.count == 0 })
			t.mu.Unlock()
			return f
		}
	}
	pick := t.faults
	t.mu.Unlock()
	if pick == nil {
		return Fault{}
	}
	return pick(r) // outside the lock: a FaultFunc may take its time
}

// Handler serves the token service's API under /api/v1/token.
func (t *TEG) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/token/transfer", t.transfer)
	mux.HandleFunc("GET /api/v1/token/balance", t.balance)
	mux.HandleFunc("GET /api/v1/token/transactions", t.transactions)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "healthy", "service": "demo TEG " + t.Registry})
	})
	return mux
}

func tegError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, teg.ErrorAnswer{ErrorCode: code, Message: msg})
}

// caller returns the authenticated account, or answers 401.
func (t *TEG) caller(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	t.mu.Lock()
	account, known := t.tokens[strings.TrimSpace(tok)]
	t.mu.Unlock()
	if !ok || !known {
		tegError(w, http.StatusUnauthorized, "AUTH_INVALID_TOKEN", "Invalid or expired token")
		return "", false
	}
	return account, true
}

// play applies the fault's waits and answers for it; it returns false when the request is
// answered.
func play(w http.ResponseWriter, f Fault) bool {
	switch f.Kind {
	case FaultFail:
		tegError(w, http.StatusServiceUnavailable, "SYS_INTERNAL_ERROR", "the service is unavailable")
		return false
	case FaultSlow:
		time.Sleep(f.Delay)
	}
	return true
}

func (t *TEG) transfer(w http.ResponseWriter, r *http.Request) {
	account, ok := t.caller(w, r)
	if !ok {
		return
	}
	var req teg.TransferRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		tegError(w, http.StatusUnprocessableEntity, "VALIDATION_INVALID_INPUT", "invalid body: "+err.Error())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	f := t.fault(FaultRequest{Op: "transfer", Account: account, IdempotencyKey: key, Message: req.Message, Receiver: req.ReceiverAgentID})
	if !play(w, f) {
		return
	}
	if f.Kind == FaultReject {
		tegError(w, http.StatusBadRequest, "AUTH_AGENT_SUSPENDED", "the receiver's account is suspended")
		return
	}
	if f.Kind == FaultApplyLater {
		time.Sleep(f.Delay) // the caller has given up by now; the transfer is applied all the same
	}
	status, body := t.apply(account, key, req)
	if f.After != nil {
		f.After()
	}
	switch f.Kind {
	case FaultApplyLose:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // drops the answer where the connection cannot be taken
	case FaultApply5xx:
		tegError(w, http.StatusBadGateway, "SYS_INTERNAL_ERROR", "upstream error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// apply applies a transfer once per (account, Idempotency-Key): a repeat with the same
// body gets the first answer again, one with another body a 409.
func (t *TEG) apply(account, key string, req teg.TransferRequest) (int, []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	hash := req.ReceiverAgentID + "\x00" + req.Amount + "\x00" + req.Message
	if key != "" {
		if k, ok := t.keys[account+"#"+key]; ok {
			if k.hash != hash {
				return errorBody(http.StatusConflict, "IDEMPOTENCY_KEY_REUSED", "the Idempotency-Key was used for another transfer")
			}
			return k.status, k.body
		}
	}
	status, body := t.applyLocked(account, req)
	if key != "" && status < 500 {
		t.keys[account+"#"+key] = keyed{hash: hash, status: status, body: body}
	}
	return status, body
}

func errorBody(status int, code, msg string) (int, []byte) {
	b, _ := json.Marshal(teg.ErrorAnswer{ErrorCode: code, Message: msg})
	return status, b
}

func (t *TEG) applyLocked(account string, req teg.TransferRequest) (int, []byte) {
	amount, err := decimal.NewFromString(req.Amount)
	switch {
	case err != nil || !amount.IsPositive() || strings.ContainsAny(req.Amount, "eE+- "):
		return errorBody(http.StatusUnprocessableEntity, "VALIDATION_INVALID_INPUT", "amount must be a positive decimal string")
	case amount.Exponent() < -18:
		return errorBody(http.StatusUnprocessableEntity, "VALIDATION_INVALID_INPUT", "amount has more than 18 decimal places")
	case req.ReceiverAgentID == account:
		return errorBody(http.StatusBadRequest, "BIZ_SELF_TRANSFER", "Cannot transfer to self")
	}
	if _, ok := t.accounts[req.ReceiverAgentID]; !ok {
		return errorBody(http.StatusNotFound, "BIZ_ENTITY_NOT_FOUND", "no account "+req.ReceiverAgentID)
	}
	if t.accounts[account].LessThan(amount.Add(t.Fee)) {
		return errorBody(http.StatusBadRequest, "BIZ_INSUFFICIENT_BALANCE", "Insufficient token balance")
	}
	t.accounts[account] = t.accounts[account].Sub(amount).Sub(t.Fee)
	t.accounts[req.ReceiverAgentID] = t.accounts[req.ReceiverAgentID].Add(amount)
	t.accounts[TreasuryAccount] = t.accounts[TreasuryAccount].Add(t.Fee)
	t.seq++
	tx := teg.Tx{
		TransactionID: fmt.Sprintf("tx_%s_%06d", t.Registry, t.seq), Status: "completed", TransactionType: "transfer",
		SenderAgentID: account, ReceiverAgentID: req.ReceiverAgentID, Amount: req.Amount, FeeAmount: t.Fee.String(),
		Timestamp: time.Now().UTC().Format(time.RFC3339Nano), AttachedMessage: req.Message,
	}
	t.txs = append(t.txs, tx)
	answer := tx
	answer.NewSenderBalance = t.accounts[account].StringFixed(18)
	b, _ := json.Marshal(answer)
	return http.StatusOK, b
}

func (t *TEG) balance(w http.ResponseWriter, r *http.Request) {
	account, ok := t.caller(w, r)
	if !ok {
		return
	}
	if !play(w, t.fault(FaultRequest{Op: "balance", Account: account})) {
		return
	}
	writeJSON(w, http.StatusOK, teg.BalanceAnswer{AgentID: account, Balance: t.Balance(account).StringFixed(18)})
}

func (t *TEG) transactions(w http.ResponseWriter, r *http.Request) {
	account, ok := t.caller(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, offset := 100, 0
	var since time.Time
	var err error
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			tegError(w, http.StatusUnprocessableEntity, "VALIDATION_INVALID_INPUT", "limit must be 1-1000")
			return
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			tegError(w, http.StatusUnprocessableEntity, "VALIDATION_INVALID_INPUT", "offset must be 0 or more")
			return
		}
	}
	if v := q.Get("start_date"); v != "" {
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			tegError(w, http.StatusUnprocessableEntity, "VALIDATION_INVALID_INPUT", "start_date must be an RFC 3339 date-time")
			return
		}
	}
	if !play(w, t.fault(FaultRequest{Op: "transactions", Account: account})) {
		return
	}
	t.mu.Lock()
	var mine []teg.Tx
	for i := len(t.txs) - 1; i >= 0; i-- { // newest first
		tx := t.txs[i]
		if tx.SenderAgentID != account && tx.ReceiverAgentID != account {
			continue
		}
		if at, _ := time.Parse(time.RFC3339Nano, tx.Timestamp); !since.IsZero() && at.Before(since) {
			continue
		}
		mine = append(mine, tx)
	}
	t.mu.Unlock()
	page := teg.TransactionsPage{Transactions: []teg.Tx{}, Total: len(mine), Limit: limit, Offset: offset}
	if offset < len(mine) {
		page.Transactions = mine[offset:min(len(mine), offset+limit)]
	}
	writeJSON(w, http.StatusOK, page)
}

// Deposit makes a transfer as an account through the token service's API, as an agent
// would: for demos and tests that stand for agents.
func (t *TEG) Deposit(baseURL, account, receiver, amount, message string) (teg.Tx, error) {
	body, _ := json.Marshal(teg.TransferRequest{ReceiverAgentID: receiver, Amount: amount, Message: message})
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(baseURL, "/")+"/api/v1/token/transfer", bytes.NewReader(body))
	if err != nil {
		return teg.Tx{}, err
	}
	req.Header.Set("Authorization", "Bearer "+t.Token(account))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return teg.Tx{}, err
	}
	defer resp.Body.Close()
	var tx teg.Tx
	if resp.StatusCode != http.StatusOK {
		var e teg.ErrorAnswer
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return tx, fmt.Errorf("deposit: %d %s %s", resp.StatusCode, e.ErrorCode, e.Message)
	}
	return tx, json.NewDecoder(resp.Body).Decode(&tx)
}
