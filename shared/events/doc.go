// Package events is the federation's event stream: typed events made from the changes of
// the table (agents, registries, messages, bridge transfers, lanes), an append-only log of
// them with a replayable position, and their delivery to WebSocket subscribers, filtered
// and authorized.
//
// # Events
//
// An event is {id, type, time, subject, registry, data, position}:
//
//	agent.added|changed|stale|gone|back     subject: the agent's DID; any subscriber
//	registry.unhealthy|healthy              subject: the registry's ID; any subscriber
//	message.delivered|failed                subject: the message ID; its sender and target
//	bridge.<status>                         subject: the transfer ID; its parties
//	lane.paused|resumed|low_liquidity       subject: the lane (from->to) or the registry; any subscriber
//
// Operators see every event. The id is the ID of the table's stream record the event was
// made from (with #n appended when one record makes several), so a change retried by the
// stream makes the same event again and the log keeps it once.
//
// # Positions
//
// Every event gets a position when it is appended to the log: an opaque string, strictly
// increasing in the order of the log (a fixed-width decimal today; compare positions for
// equality only, or as strings). Positions are dense: every position up to the log's head
// names an event, until the event expires with the log's retention (24 h by default).
// One appender (the events function, with a reserved concurrency of 1) takes the
// positions in turn with a conditional write, so the log has one order across all the
// stream's shards; the stream keeps the changes of one item in order, so the events of one
// agent, message or transfer are in the order of its changes.
//
// # Delivery
//
// The appender is also the only sender of events: it posts the events it appended to the
// subscriptions that are live, and serves a new subscription (subscribe with after) by
// replaying the log from after and then turning it live at the position it replayed to,
// all in one sequence. So a subscriber receives the events of its filter in log order,
// each once, across the seam between replay and live. A subscriber that reconnects (after
// a network failure, the 10-minute idle limit or the 2-hour connection limit) and
// subscribes with the position of the last event it received gets every later event
// exactly once.
//
// When a batch of stream records is retried, the events already in the log are not
// appended again (the log write is conditional on the event ID), and they are not sent
// live again. Instead the log's head records how far its events were sent: a run of the
// appender that finds events appended but not sent everywhere (the previous run died in
// between) closes the connections those events were for, which makes their subscribers
// resume from their last position. A post that fails for a reason other than a gone
// connection closes that connection the same way. Either way no subscriber misses an event
// or sees one twice, and one failing subscriber never holds back the others.
package events
