package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// Items of the directory (docs/architecture.md, "The table"):
//
//	AGENT#<did>    ROUTE             the agent's record, owned by one registry; GSI2 REG#<registry> / <did>
//	AGENT#<did>    SOURCE#<registry> a shadow: another registry's view of a DID it does not own; GSI2 likewise
//	AGENT#<did>    F#<facet key>     one discovery index entry per filter value; GSI1 <facet key> / <did>
//	REGISTRY#<id>  META              the registry's sync state and its agents by status
//	REGISTRY#<id>  FACETS            the count of every facet key its records are indexed under
//	LEASE#<name>   LEASE             a lease with its holder and expiry
//
// A record whose index entries are being changed carries index_pending (a token of the
// write) until they are: a write cut short between the two leaves the mark, which the
// next sync finds in the registry index and repairs.
const (
	agentPrefix  = "AGENT#"
	skRoute      = "ROUTE"
	sourcePrefix = "SOURCE#"
	facetPrefix  = "F#"
	skFacets     = "FACETS"
	regIndexPK   = "REG#"
	leasePrefix  = "LEASE#"
	attrPending  = "index_pending"

	// IndexFacets and IndexRegistry are the GSIs of template.yaml.
	IndexFacets   = "GSI1"
	IndexRegistry = "GSI2"
)

var _ directory.SyncStore = (*Store)(nil)

// Lease implements directory.SyncStore with a conditional put.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) error {
	now := time.Now()
	item := key(leasePrefix+name, "LEASE")
	item["holder"] = sv(holder)
	item["until"] = nv(now.Add(ttl).UnixMilli())
	item["expires_at"] = nv(now.Add(ttl + time.Hour).Unix())
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(PK) OR #until < :now OR holder = :me"),
		ExpressionAttributeNames:  map[string]string{"#until": "until"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": nv(now.UnixMilli()), ":me": sv(holder)},
	})
	if err != nil {
		return fmt.Errorf("lease %s: %w", name, translate(err))
	}
	return nil
}

// ReleaseLease implements directory.SyncStore.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(leasePrefix+name, "LEASE"),
		ConditionExpression:       aws.String("holder = :me"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": sv(holder)},
	})
	if err != nil && federation.ErrorCode(translate(err)) != federation.ECONFLICT {
		return fmt.Errorf("release lease %s: %w", name, translate(err))
	}
	return nil
}

// SyncState implements directory.SyncStore.
func (s *Store) SyncState(ctx context.Context, id string) (directory.SyncState, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(registryPrefix+id, skMeta), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return directory.SyncState{}, fmt.Errorf("sync state of %s: %w", id, translate(err))
	}
	st := directory.SyncState{RegistryState: registryState(out.Item)}
	st.ID = id
	st.Cursor = str(out.Item, "cursor")
	st.CountsHash = str(out.Item, "counts_hash")
	if t, err := time.Parse(time.RFC3339Nano, str(out.Item, "last_full_refresh")); err == nil {
		st.LastFullRefresh = t
	}
	return st, nil
}

// SaveSyncState implements directory.SyncStore.
func (s *Store) SaveSyncState(ctx context.Context, st directory.SyncState) error {
	item := registryItem(st.RegistryState)
	if st.Cursor != "" {
		item["cursor"] = sv(st.Cursor)
	}
	if st.CountsHash != "" {
		item["counts_hash"] = sv(st.CountsHash)
	}
	if !st.LastFullRefresh.IsZero() {
		item["last_full_refresh"] = sv(st.LastFullRefresh.UTC().Format(time.RFC3339Nano))
	}
	item["duration_ms"] = nv(st.Duration.Milliseconds())
	item["pages"] = nv(int64(st.Pages))
	item["requests"] = nv(int64(st.Requests))
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("save sync state of %s: %w", st.ID, translate(err))
	}
	return nil
}

// View implements directory.SyncStore with a Query of the registry index.
func (s *Store) View(ctx context.Context, registryID string) (directory.View, error) {
	v := directory.View{Records: map[string]directory.Record{}, Versions: map[string]string{}}
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(IndexRegistry),
		KeyConditionExpression:    aws.String("GSI2PK = :r"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": sv(regIndexPK + registryID)},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return directory.View{}, fmt.Errorf("records of %s: %w", registryID, translate(err))
		}
		for _, it := range out.Items {
			r := directory.Record{
				DID:          str(it, "did"),
				SourceID:     str(it, "source_id"),
				Registry:     registryID,
				ContentHash:  str(it, "content_hash"),
				Status:       str(it, "status"),
				Owner:        str(it, AttrSK) == skRoute,
				Facets:       list(it, "facets"),
				IndexPending: str(it, attrPending) != "",
			}
			prev, dup := v.Records[r.SourceID]
			switch {
			case !dup:
			case livelier(r, prev):
				v.Extra = append(v.Extra, prev)
			default:
				v.Extra = append(v.Extra, r)
				continue
			}
			v.Records[r.SourceID] = r
			v.Versions[r.SourceID] = str(it, "source_version")
		}
	}
	return v, nil
}

// livelier says which of two records of one source ID is the live one: not gone, then
// owned.
func livelier(a, b directory.Record) bool {
	if (a.Status == federation.StatusGone) != (b.Status == federation.StatusGone) {
		return b.Status == federation.StatusGone
	}
	return a.Owner && !b.Owner
}

// PutAgent implements directory.SyncStore. The record is written first, under a
// condition that keeps an active owner's record, and marked pending when its index
// entries must change; then the entries are changed and the mark removed. A shadow the
// registry held of the DID goes before the record is written, so that a failure between
// leaves neither, which the next sync rewrites, rather than both.
func (s *Store) PutAgent(ctx context.Context, a federation.Agent, version string, prev *directory.Record) (directory.Write, error) {
	if prev != nil && !prev.Owner {
		if err := s.delete(ctx, key(agentPrefix+a.DID, sourcePrefix+a.Registry)); err != nil {
			return directory.Write{}, err
		}
	}
	facets := directory.Facets(a)
	item := agentItem(a, version)
	item["facets"] = lv(facets)
	// The index is known to be right when the registry's own clean record had the
	// same facets; otherwise the record is marked until it is.
	indexed := prev != nil && prev.Owner && !prev.IndexPending && sameSet(prev.Facets, facets)
	token := ""
	if !indexed {
		token = newToken()
		item[attrPending] = sv(token)
	}
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(PK) OR registry = :me OR #status <> :active"),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": sv(a.Registry), ":active": sv(federation.StatusActive)},
		ReturnValues:              types.ReturnValueAllOld,
	})
	var conflict *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &conflict):
		return s.putShadow(ctx, a, item)
	case err != nil:
		return directory.Write{}, fmt.Errorf("put agent %s: %w", a.DID, translate(err))
	}
	old := out.Attributes
	w := directory.Write{Owner: a.Registry, New: len(old) == 0 || str(old, "status") == federation.StatusGone}
	if from := str(old, "registry"); from != "" && from != a.Registry {
		w.TakenFrom = from
	}
	var oldFacets []string // nil: what the index holds is not known, and is read
	if len(old) == 0 {
		oldFacets = []string{}
	} else if str(old, attrPending) == "" {
		oldFacets = list(old, "facets")
	}
	if indexed && (oldFacets == nil || !sameSet(oldFacets, facets)) {
		// Another writer changed the record since the registry's view was read: mark it
		// before its index is touched.
		token = newToken()
		if err := s.mark(ctx, a.DID, token); err != nil {
			return w, err
		}
	}
	if token == "" {
		return w, nil
	}
	if err := s.reindex(ctx, a.DID, oldFacets, facets, time.Time{}); err != nil {
		return w, err
	}
	return w, s.unmark(ctx, a.DID, token)
}

// putShadow keeps a's view as its registry's shadow, because another registry's active
// record owns the DID, and names the registry on the owner's record. The owner's record is
// noted first: a failure between leaves no shadow, which the next sync writes again.
func (s *Store) putShadow(ctx context.Context, a federation.Agent, item map[string]types.AttributeValue) (directory.Write, error) {
	owner, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(agentPrefix+a.DID, skRoute),
		ProjectionExpression: aws.String("registry"), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return directory.Write{}, fmt.Errorf("owner of %s: %w", a.DID, translate(err))
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(agentPrefix+a.DID, skRoute),
		UpdateExpression:          aws.String("ADD also_listed_by :r"),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":r": &types.AttributeValueMemberSS{Value: []string{a.Registry}}},
	})
	if err != nil && federation.ErrorCode(translate(err)) != federation.ECONFLICT {
		return directory.Write{}, fmt.Errorf("note conflict on %s: %w", a.DID, translate(err))
	}
	// The shadow keeps the whole agent, so that it can become the record (Promote)
	// when the owner's record is no longer active, without the card being fetched again.
	shadow := maps.Clone(item)
	maps.Copy(shadow, key(agentPrefix+a.DID, sourcePrefix+a.Registry))
	delete(shadow, "facets")
	delete(shadow, attrPending)
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: shadow}); err != nil {
		return directory.Write{}, fmt.Errorf("put shadow %s of %s: %w", a.DID, a.Registry, translate(err))
	}
	return directory.Write{Owner: str(owner.Item, "registry")}, nil
}

// Promote implements directory.SyncStore.
func (s *Store) Promote(ctx context.Context, sh directory.Record) (directory.Record, directory.Write, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table),
		Key: key(agentPrefix+sh.DID, sourcePrefix+sh.Registry), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return sh, directory.Write{}, fmt.Errorf("shadow %s of %s: %w", sh.DID, sh.Registry, translate(err))
	}
	if str(out.Item, "endpoint") == "" {
		return sh, directory.Write{}, federation.Errorf(federation.ENOTFOUND, "the shadow %s of %s does not keep the whole agent", sh.DID, sh.Registry)
	}
	a := agentFrom(out.Item)
	a.AlsoListedBy = nil
	w, err := s.PutAgent(ctx, a, str(out.Item, "source_version"), &sh)
	if err != nil {
		return sh, w, err
	}
	rec := directory.Record{DID: a.DID, SourceID: a.SourceID, Registry: a.Registry, ContentHash: a.ContentHash, Status: a.Status, Owner: w.Owner == a.Registry}
	if rec.Owner {
		rec.Facets = directory.Facets(a)
	}
	return rec, w, nil
}

// SetStatus implements directory.SyncStore, marking an owned record pending while its
// index entries move to the new status.
func (s *Store) SetStatus(ctx context.Context, r directory.Record, status string, now time.Time, ttl time.Duration) error {
	sk := skRoute
	if !r.Owner {
		sk = sourcePrefix + r.Registry
	}
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(agentPrefix+r.DID, sk),
		ConditionExpression:       aws.String("attribute_exists(PK) AND registry = :me"),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": sv(status), ":me": sv(r.Registry)},
	}
	facets := make([]string, len(r.Facets))
	for i, f := range r.Facets {
		facets[i] = directory.WithStatus(f, status)
	}
	set, remove := "SET #status = :s", " REMOVE expires_at"
	var expires time.Time
	if status == federation.StatusGone {
		expires = now.Add(ttl)
		set, remove = set+", expires_at = :e", ""
		in.ExpressionAttributeValues[":e"] = nv(expires.Unix())
	}
	token := ""
	if r.Owner {
		token = newToken()
		set += ", facets = :f, " + attrPending + " = :t"
		in.ExpressionAttributeValues[":f"] = lv(facets)
		in.ExpressionAttributeValues[":t"] = sv(token)
	}
	in.UpdateExpression = aws.String(set + remove)
	if _, err := s.db.UpdateItem(ctx, in); err != nil {
		return fmt.Errorf("set %s of %s to %s: %w", r.Registry, r.DID, status, translate(err))
	}
	if !r.Owner {
		return nil
	}
	old := r.Facets
	if r.IndexPending {
		old = nil // the index may not hold what the record says: read it
	}
	if err := s.reindex(ctx, r.DID, old, facets, expires); err != nil {
		return err
	}
	return s.unmark(ctx, r.DID, token)
}

// RepairIndex implements directory.SyncStore: it reads the agent's items (one Query of its
// partition), brings the index entries to the record's facets, and removes the mark.
func (s *Store) RepairIndex(ctx context.Context, r directory.Record) error {
	if !r.Owner {
		return nil
	}
	items, err := s.partition(ctx, r.DID)
	if err != nil {
		return err
	}
	var record map[string]types.AttributeValue
	var indexed []string
	for _, it := range items {
		switch sk := str(it, AttrSK); {
		case sk == skRoute:
			record = it
		case strings.HasPrefix(sk, facetPrefix):
			indexed = append(indexed, strings.TrimPrefix(sk, facetPrefix))
		}
	}
	token := str(record, attrPending)
	if record == nil || token == "" || str(record, "registry") != r.Registry {
		return nil // gone, repaired, or another registry's now
	}
	var expires time.Time
	if str(record, "status") == federation.StatusGone {
		expires = time.Unix(int64(integer(record, "expires_at")), 0)
	}
	if err := s.writeIndex(ctx, r.DID, indexed, list(record, "facets"), expires); err != nil {
		return err
	}
	return s.unmark(ctx, r.DID, token)
}

// partition returns every item of an agent: its record, shadows and index entries.
func (s *Store) partition(ctx context.Context, did string) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(agentPrefix + did)},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("items of %s: %w", did, translate(err))
		}
		items = append(items, out.Items...)
	}
	return items, nil
}

// mark sets the pending mark of an agent's record.
func (s *Store) mark(ctx context.Context, did, token string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(agentPrefix+did, skRoute),
		UpdateExpression:          aws.String("SET " + attrPending + " = :t"),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": sv(token)},
	})
	if err != nil {
		return fmt.Errorf("mark %s pending: %w", did, translate(err))
	}
	return nil
}

// unmark removes the pending mark if it is still the write's own: a later write's mark
// stays for that write to remove.
func (s *Store) unmark(ctx context.Context, did, token string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       key(agentPrefix+did, skRoute),
		UpdateExpression:          aws.String("REMOVE " + attrPending),
		ConditionExpression:       aws.String(attrPending + " = :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": sv(token)},
	})
	if err != nil && federation.ErrorCode(translate(err)) != federation.ECONFLICT {
		return fmt.Errorf("unmark %s: %w", did, translate(err))
	}
	return nil
}

// newToken names one write's pending mark.
func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// reindex brings an agent's index entries from the old keys to the new ones. nil old
// keys mean they are not known: the entries are read.
func (s *Store) reindex(ctx context.Context, did string, old, new []string, expires time.Time) error {
	if old == nil {
		items, err := s.partition(ctx, did)
		if err != nil {
			return err
		}
		old = []string{}
		for _, it := range items {
			if sk := str(it, AttrSK); strings.HasPrefix(sk, facetPrefix) {
				old = append(old, strings.TrimPrefix(sk, facetPrefix))
			}
		}
	}
	return s.writeIndex(ctx, did, old, new, expires)
}

// writeIndex deletes the entries of the keys that went and puts those that came (all of
// them again when they expire, to carry the expiry); nothing when they are the same. Each
// key is written once: DynamoDB refuses a batch that names an item twice.
func (s *Store) writeIndex(ctx context.Context, did string, old, new []string, expires time.Time) error {
	oldSet := map[string]bool{}
	for _, k := range old {
		oldSet[k] = true
	}
	var writes []types.WriteRequest
	written := map[string]bool{}
	for _, k := range new {
		if written[k] {
			continue
		}
		written[k] = true
		if oldSet[k] && expires.IsZero() {
			delete(oldSet, k)
			continue
		}
		delete(oldSet, k)
		item := key(agentPrefix+did, facetPrefix+k)
		item["GSI1PK"], item["GSI1SK"] = sv(k), sv(did)
		if !expires.IsZero() {
			item["expires_at"] = nv(expires.Unix())
		}
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	gone := make([]string, 0, len(oldSet))
	for k := range oldSet {
		gone = append(gone, k)
	}
	slices.Sort(gone)
	for _, k := range gone {
		writes = append(writes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(agentPrefix+did, facetPrefix+k)}})
	}
	return s.batchWrite(ctx, writes)
}

// sameSet reports whether a and b hold the same keys.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	as, bs := slices.Clone(a), slices.Clone(b)
	slices.Sort(as)
	slices.Sort(bs)
	return slices.Equal(as, bs)
}

func (s *Store) batchWrite(ctx context.Context, writes []types.WriteRequest) error {
	for len(writes) > 0 {
		n := min(len(writes), 25)
		pending := map[string][]types.WriteRequest{s.table: writes[:n]}
		writes = writes[n:]
		err := untilProcessed(ctx, func() (bool, error) {
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return false, fmt.Errorf("write index: %w", translate(err))
			}
			pending = out.UnprocessedItems
			return len(pending) == 0, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) delete(ctx context.Context, k map[string]types.AttributeValue) error {
	if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: k}); err != nil {
		return fmt.Errorf("delete: %w", translate(err))
	}
	return nil
}

// maxFacetCounts bounds the keys of a registry's facet counts item, whose size DynamoDB
// bounds to 400 KB. The counts only steer discovery's choice of index, so the smallest
// are the ones left out: read as 0, they are close to right.
const maxFacetCounts = 5000

// SaveFacetCounts implements directory.SyncStore: one item per registry, replaced whole.
func (s *Store) SaveFacetCounts(ctx context.Context, registryID string, counts map[string]int) error {
	keys := make([]string, 0, len(counts))
	for k, n := range counts {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := counts[b] - counts[a]; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	item := key(registryPrefix+registryID, skFacets)
	for _, k := range keys[:min(len(keys), maxFacetCounts)] {
		item["c_"+k] = nv(int64(counts[k]))
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("save the facet counts of %s: %w", registryID, translate(err))
	}
	return nil
}

// placeholder is the i-th expression placeholder with a prefix, all of one width. The local
// emulator (kumo v0.33.1) substitutes placeholders as text, so #k1 would also rewrite the
// start of #k10; fixed-width ones are never a prefix of another. See
// localstack.TestKumoPlaceholderPrefix, which shows the emulator's behaviour.
func placeholder(prefix string, i int) string {
	return fmt.Sprintf("%s%03d", prefix, i)
}

// FacetCounts implements directory.DiscoverStore: the sum over the registries of their
// counts of each key (0 for unknown keys), in one BatchGetItem.
func (s *Store) FacetCounts(ctx context.Context, registries, keys []string) (map[string]int, error) {
	names := map[string]string{}
	proj := ""
	for i, k := range keys {
		if i > 0 {
			proj += ", "
		}
		proj += placeholder("#k", i)
		names[placeholder("#k", i)] = "c_" + k
	}
	ks := make([]map[string]types.AttributeValue, len(registries))
	for i, r := range registries {
		ks[i] = key(registryPrefix+r, skFacets)
	}
	items, err := s.batchGetProjected(ctx, ks, proj, names)
	if err != nil {
		return nil, fmt.Errorf("facet counts: %w", err)
	}
	counts := map[string]int{}
	for _, k := range keys {
		counts[k] = 0
		for _, it := range items {
			counts[k] += integer(it, "c_"+k)
		}
	}
	return counts, nil
}

// QueryFacet returns up to limit DIDs under a facet key after the DID after, in DID order,
// and how many items the Query read.
func (s *Store) QueryFacet(ctx context.Context, facet, after string, limit int) (dids []string, read int, err error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(IndexFacets),
		KeyConditionExpression:    aws.String("GSI1PK = :k"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": sv(facet)},
		Limit:                     aws.Int32(int32(limit)),
	}
	if after != "" {
		in.KeyConditionExpression = aws.String("GSI1PK = :k AND GSI1SK > :a")
		in.ExpressionAttributeValues[":a"] = sv(after)
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return nil, 0, fmt.Errorf("query %s: %w", facet, translate(err))
	}
	for _, it := range out.Items {
		dids = append(dids, str(it, "GSI1SK"))
	}
	return dids, len(out.Items), nil
}

// Agents returns the records of the DIDs that exist, in no particular order.
func (s *Store) Agents(ctx context.Context, dids []string) ([]federation.Agent, error) {
	keys := make([]map[string]types.AttributeValue, len(dids))
	for i, d := range dids {
		keys[i] = key(agentPrefix+d, skRoute)
	}
	items, err := s.batchGet(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("get agents: %w", err)
	}
	agents := make([]federation.Agent, 0, len(items))
	for _, it := range items {
		agents = append(agents, agentFrom(it))
	}
	return agents, nil
}

// Agent returns one agent's record. Errors: ENOTFOUND.
func (s *Store) Agent(ctx context.Context, did string) (federation.Agent, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(agentPrefix+did, skRoute)})
	if err != nil {
		return federation.Agent{}, fmt.Errorf("get agent %s: %w", did, translate(err))
	}
	if out.Item == nil {
		return federation.Agent{}, federation.Errorf(federation.ENOTFOUND, "no agent %s in the directory", did)
	}
	return agentFrom(out.Item), nil
}

func agentItem(a federation.Agent, version string) map[string]types.AttributeValue {
	skills, _ := json.Marshal(a.Skills)
	item := key(agentPrefix+a.DID, skRoute)
	for k, v := range map[string]string{
		"did": a.DID, "name": a.Name, "description": a.Description, "registry": a.Registry, "source_id": a.SourceID,
		"endpoint": a.Endpoint, "protocol": a.Protocol, "protocol_version": a.Version, "skills": string(skills),
		"service_type": a.ServiceType, "signature": a.Signature, "status": a.Status, "content_hash": a.ContentHash,
		"last_seen": a.LastSeen.UTC().Format(time.RFC3339Nano), "source_version": version,
		"GSI2PK": regIndexPK + a.Registry, "GSI2SK": a.DID,
	} {
		if v != "" {
			item[k] = sv(v)
		}
	}
	item["tags"] = lv(a.Tags)
	item["capabilities"] = lv(a.Capabilities)
	item["identities"] = lv(a.Identities)
	return item
}

func agentFrom(it map[string]types.AttributeValue) federation.Agent {
	a := federation.Agent{
		DID: str(it, "did"), Name: str(it, "name"), Description: str(it, "description"), Registry: str(it, "registry"),
		SourceID: str(it, "source_id"), Endpoint: str(it, "endpoint"), Protocol: str(it, "protocol"),
		Version: str(it, "protocol_version"), ServiceType: str(it, "service_type"), Signature: str(it, "signature"),
		Status: str(it, "status"), ContentHash: str(it, "content_hash"),
		Tags: list(it, "tags"), Capabilities: list(it, "capabilities"), Identities: list(it, "identities"),
	}
	_ = json.Unmarshal([]byte(str(it, "skills")), &a.Skills)
	if a.Skills == nil {
		a.Skills = []federation.Skill{}
	}
	if t, err := time.Parse(time.RFC3339Nano, str(it, "last_seen")); err == nil {
		a.LastSeen = t
	}
	if v, ok := it["also_listed_by"].(*types.AttributeValueMemberSS); ok {
		a.AlsoListedBy = v.Value
	}
	return a
}

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func nv(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func lv(ss []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(ss))
	for i, s := range ss {
		l[i] = sv(s)
	}
	return &types.AttributeValueMemberL{Value: l}
}

func list(item map[string]types.AttributeValue, name string) []string {
	out := []string{}
	if v, ok := item[name].(*types.AttributeValueMemberL); ok {
		for _, e := range v.Value {
			if s, ok := e.(*types.AttributeValueMemberS); ok {
				out = append(out, s.Value)
			}
		}
	}
	return out
}
