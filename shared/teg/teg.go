// Package teg is the client of a registry's TEG token service (the AgentVault TEG layer
// API, docs/architecture.md): transfers with an Idempotency-Key, the balance and the
// transaction history of the account whose Bearer token it holds. It implements
// bridge.TokenService, and classifies every failure by what it means for money: refused
// (nothing applied, for good), unavailable (nothing applied, try again) or unknown (it may
// have been applied).
//
// Go's HTTP client sends a request that carries an Idempotency-Key once more by itself
// when a reused connection closes before any answer (net/http treats the header as a
// mark of an idempotent request): the token service's idempotency makes that safe, and
// a test that drops an answer must drop the repeat too to see an unknown outcome.
package teg

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/federation-gateway/gateway/shared/bridge"
)

// DefaultTimeout bounds one request: a Lambda step makes a few and must finish well
// inside its own timeout.
const DefaultTimeout = 3 * time.Second

// maxBody bounds what is read of an answer.
const maxBody = 4 << 20

// Client speaks to one token service as one account.
type Client struct {
	base    string
	token   string
	http    *http.Client
	timeout time.Duration
}

var _ bridge.TokenService = (*Client)(nil)

// New returns a client of the token service at baseURL (its /api/v1 lives below it),
// authenticating with token. httpClient should be the outbound guard's
// (outbound.NewClient); timeout 0 means DefaultTimeout.
func New(baseURL, token string, httpClient *http.Client, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: httpClient, timeout: timeout}
}

// Tx is a transaction as the token service writes it.
type Tx struct {
	TransactionID   string `json:"transaction_id"`
	Status          string `json:"status"`
	TransactionType string `json:"transaction_type,omitempty"`
	SenderAgentID   string `json:"sender_agent_id"`
	ReceiverAgentID string `json:"receiver_agent_id"`
	Amount          string `json:"amount"`
	FeeAmount       string `json:"fee_amount"`
	Timestamp       string `json:"timestamp"`
	AttachedMessage string `json:"attached_message,omitempty"`
	// NewSenderBalance is in a transfer's answer only.
	NewSenderBalance string `json:"new_sender_balance,omitempty"`
}

// TransferRequest is the body of POST /api/v1/token/transfer.
type TransferRequest struct {
	ReceiverAgentID string `json:"receiver_agent_id"`
	Amount          string `json:"amount"`
	Message         string `json:"message,omitempty"`
}

// TransactionsPage is the answer of GET /api/v1/token/transactions.
type TransactionsPage struct {
	Transactions []Tx `json:"transactions"`
	Total        int  `json:"total"`
	Limit        int  `json:"limit"`
	Offset       int  `json:"offset"`
}

// BalanceAnswer is the answer of GET /api/v1/token/balance.
type BalanceAnswer struct {
	AgentID string `json:"agent_id"`
	Balance string `json:"balance"`
}

// ErrorAnswer is the token service's error body.
type ErrorAnswer struct {
	ErrorCode string `json:"error_code"`
	Message   string `json:"message"`
	Detail    string `json:"detail,omitempty"`
}

// Transfer implements bridge.TokenService.
func (c *Client) Transfer(ctx context.Context, req bridge.TokenTransfer) (bridge.TokenTx, error) {
	body, _ := json.Marshal(TransferRequest{ReceiverAgentID: req.Receiver, Amount: req.Amount.String(), Message: req.Message})
	status, raw, err := c.do(ctx, http.MethodPost, "/api/v1/token/transfer", body, req.IdempotencyKey)
	if err != nil {
		// A request that never left (no connection) applied nothing; any other failure
		// may have reached the service.
		kind := bridge.TokenUnknown
		if notSent(err) {
			kind = bridge.TokenUnavailable
		}
		return bridge.TokenTx{}, &bridge.TokenError{Kind: kind, Message: "transfer", Err: err}
	}
	if status/100 != 2 {
		return bridge.TokenTx{}, answerError(status, raw, transferKind(status))
	}
	var tx Tx
	if err := json.Unmarshal(raw, &tx); err != nil {
		return bridge.TokenTx{}, &bridge.TokenError{Kind: bridge.TokenUnknown, Status: status, Message: "a transfer answer that is not JSON", Err: err}
	}
	out, err := tx.toDomain()
	if err != nil {
		return bridge.TokenTx{}, &bridge.TokenError{Kind: bridge.TokenUnknown, Status: status, Message: "a transfer answer", Err: err}
	}
	return out, nil
}

// transferKind says what an error status of a transfer means. 4xx answers that describe
// the request (bad input, unknown receiver, balance, suspended account) applied nothing
// and will not; 401, 403 and 429 applied nothing yet may pass later; 408, 409 (the same
// key still being applied) and 5xx may have applied it.
func transferKind(status int) string {
	switch {
	case status == 401 || status == 403 || status == 429:
		return bridge.TokenUnavailable
	case status == 408 || status == 409 || status >= 500:
		return bridge.TokenUnknown
	case status >= 400:
		return bridge.TokenRefused
	default:
		return bridge.TokenUnknown
	}
}

// Transactions implements bridge.TokenService.
func (c *Client) Transactions(ctx context.Context, since time.Time, limit, offset int) (bridge.TokenPage, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
	if !since.IsZero() {
		q.Set("start_date", since.UTC().Format(time.RFC3339))
	}
	status, raw, err := c.do(ctx, http.MethodGet, "/api/v1/token/transactions?"+q.Encode(), nil, "")
	if err != nil {
		return bridge.TokenPage{}, &bridge.TokenError{Kind: bridge.TokenUnavailable, Message: "transactions", Err: err}
	}
	if status != http.StatusOK {
		return bridge.TokenPage{}, answerError(status, raw, bridge.TokenUnavailable)
	}
	var page TransactionsPage
	if err := json.Unmarshal(raw, &page); err != nil {
		return bridge.TokenPage{}, &bridge.TokenError{Kind: bridge.TokenUnavailable, Status: status, Message: "a transactions page that is not JSON", Err: err}
	}
	out := bridge.TokenPage{Total: page.Total, Transactions: make([]bridge.TokenTx, 0, len(page.Transactions))}
	for _, tx := range page.Transactions {
		d, err := tx.toDomain()
		if err != nil {
			return bridge.TokenPage{}, &bridge.TokenError{Kind: bridge.TokenUnavailable, Status: status, Message: "a transactions page", Err: err}
		}
		out.Transactions = append(out.Transactions, d)
	}
	return out, nil
}

// Balance implements bridge.TokenService.
func (c *Client) Balance(ctx context.Context) (decimal.Decimal, error) {
	status, raw, err := c.do(ctx, http.MethodGet, "/api/v1/token/balance", nil, "")
	if err != nil {
		return decimal.Zero, &bridge.TokenError{Kind: bridge.TokenUnavailable, Message: "balance", Err: err}
	}
	if status != http.StatusOK {
		return decimal.Zero, answerError(status, raw, bridge.TokenUnavailable)
	}
	var b BalanceAnswer
	if err := json.Unmarshal(raw, &b); err != nil {
		return decimal.Zero, &bridge.TokenError{Kind: bridge.TokenUnavailable, Status: status, Message: "a balance that is not JSON", Err: err}
	}
	d, err := decimal.NewFromString(b.Balance)
	if err != nil {
		return decimal.Zero, &bridge.TokenError{Kind: bridge.TokenUnavailable, Status: status, Message: "balance " + clip(b.Balance), Err: err}
	}
	return d, nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, idemKey string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, fmt.Errorf("read the answer: %w", err)
	}
	return resp.StatusCode, raw, nil
}

// notSent reports whether err happened before the request could reach the service: the
// connection was never made.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func answerError(status int, raw []byte, kind string) *bridge.TokenError {
	var a ErrorAnswer
	_ = json.Unmarshal(raw, &a)
	return &bridge.TokenError{Kind: kind, Status: status, Code: clip(a.ErrorCode), Message: clip(a.Message)}
}

func (tx Tx) toDomain() (bridge.TokenTx, error) {
	amount, err := decimal.NewFromString(tx.Amount)
	if err != nil {
		return bridge.TokenTx{}, fmt.Errorf("amount %q: %w", clip(tx.Amount), err)
	}
	fee := decimal.Zero
	if tx.FeeAmount != "" {
		if fee, err = decimal.NewFromString(tx.FeeAmount); err != nil {
			return bridge.TokenTx{}, fmt.Errorf("fee_amount %q: %w", clip(tx.FeeAmount), err)
		}
	}
	if tx.TransactionID == "" {
		return bridge.TokenTx{}, errors.New("no transaction_id")
	}
	at, _ := time.Parse(time.RFC3339Nano, tx.Timestamp)
	return bridge.TokenTx{ID: tx.TransactionID, Status: tx.Status, Type: tx.TransactionType, Sender: tx.SenderAgentID,
		Receiver: tx.ReceiverAgentID, Amount: amount, Fee: fee, Message: tx.AttachedMessage, At: at}, nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
