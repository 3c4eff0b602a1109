package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/shared/directory"
	"github.com/federation-gateway/gateway/shared/federation"
)

// Items of the directory (DESIGN §4):
//
//	AGENT#<did>  ROUTE             the agent's record, owned by one registry; GSI2 REG#<registry> / <did>
//	AGENT#<did>  SOURCE#<registry> a shadow: another registry's view of a DID it does not own; GSI2 likewise
//	AGENT#<did>  F#<facet key>     one discovery index entry per filter value; GSI1 <facet key> / <did>
//	DIRECTORY    STATS             the agent count; DIRECTORY FACETS: the count of every facet key
//	REGISTRY#<id> META             the registry's sync state
//	LEASE#<name> LEASE             a lease with its holder and expiry
const (
	agentPrefix  = "AGENT#"
	skRoute      = "ROUTE"
	sourcePrefix = "SOURCE#"
	facetPrefix  = "F#"
	skFacets     = "FACETS"
	regIndexPK   = "REG#"
	leasePrefix  = "LEASE#"

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
				DID:         str(it, "did"),
				SourceID:    str(it, "source_id"),
				Registry:    registryID,
				ContentHash: str(it, "content_hash"),
				Status:      str(it, "status"),
				Owner:       str(it, AttrSK) == skRoute,
				Facets:      list(it, "facets"),
			}
			v.Records[r.SourceID] = r
			v.Versions[r.SourceID] = str(it, "source_version")
		}
	}
	return v, nil
}

// PutAgent implements directory.SyncStore.
func (s *Store) PutAgent(ctx context.Context, a federation.Agent, version string, prev *directory.Record) (directory.Write, error) {
	item := agentItem(a, version)
	item["facets"] = lv(directory.Facets(a))
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(s.table),
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(PK) OR registry = :me OR #status <> :active"),
		ExpressionAttributeNames:  map[string]string{"#status": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": sv(a.Registry), ":active": sv(federation.StatusActive)},
		ReturnValues:              types.ReturnValueAllOld,
	})
	if err == nil {
		old := out.Attributes
		w := directory.Write{Owner: a.Registry, New: len(old) == 0 || str(old, "status") == federation.StatusGone}
		if err := s.reindex(ctx, a.DID, list(old, "facets"), directory.Facets(a), time.Time{}); err != nil {
			return w, err
		}
		if prev != nil && !prev.Owner {
			if err := s.delete(ctx, key(agentPrefix+a.DID, sourcePrefix+a.Registry)); err != nil {
				return w, err
			}
		}
		return w, nil
	}
	var conflict *types.ConditionalCheckFailedException
	if !errors.As(err, &conflict) {
		return directory.Write{}, fmt.Errorf("put agent %s: %w", a.DID, translate(err))
	}

	// Another registry's active record owns the DID: keep this registry's view as a shadow,
	// so its next runs know the card, and name it on the owner's record.
	owner, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(agentPrefix+a.DID, skRoute), ProjectionExpression: aws.String("registry")})
	if err != nil {
		return directory.Write{}, fmt.Errorf("owner of %s: %w", a.DID, translate(err))
	}
	shadow := key(agentPrefix+a.DID, sourcePrefix+a.Registry)
	for _, k := range []string{"did", "registry", "source_id", "content_hash", "status", "source_version", "GSI2PK", "GSI2SK", "last_seen"} {
		if v, ok := item[k]; ok {
			shadow[k] = v
		}
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: shadow}); err != nil {
		return directory.Write{}, fmt.Errorf("put shadow %s of %s: %w", a.DID, a.Registry, translate(err))
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
	return directory.Write{Owner: str(owner.Item, "registry")}, nil
}

// SetStatus implements directory.SyncStore.
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
	if r.Owner {
		set += ", facets = :f"
		in.ExpressionAttributeValues[":f"] = lv(facets)
	}
	in.UpdateExpression = aws.String(set + remove)
	if _, err := s.db.UpdateItem(ctx, in); err != nil {
		return fmt.Errorf("set %s of %s to %s: %w", r.Registry, r.DID, status, translate(err))
	}
	if r.Owner {
		return s.reindex(ctx, r.DID, r.Facets, facets, expires)
	}
	return nil
}

// reindex brings an agent's facet items from the old keys to the new: it deletes the keys
// that went and puts the ones that came, and writes nothing when they are the same.
func (s *Store) reindex(ctx context.Context, did string, old, new []string, expires time.Time) error {
	oldSet := map[string]bool{}
	for _, k := range old {
		oldSet[k] = true
	}
	var writes []types.WriteRequest
	for _, k := range new {
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
	for k := range oldSet {
		writes = append(writes, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(agentPrefix+did, facetPrefix+k)}})
	}
	return s.batchWrite(ctx, writes)
}

func (s *Store) batchWrite(ctx context.Context, writes []types.WriteRequest) error {
	for len(writes) > 0 {
		n := min(len(writes), 25)
		pending := map[string][]types.WriteRequest{s.table: writes[:n]}
		writes = writes[n:]
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > maxBatchRetries {
				return federation.Errorf(federation.EUNAVAILABLE, "the directory is busy; try again")
			}
			if attempt > 0 {
				if err := sleep(ctx, time.Duration(25<<attempt)*time.Millisecond); err != nil {
					return err
				}
			}
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return fmt.Errorf("write index: %w", translate(err))
			}
			pending = out.UnprocessedItems
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

// AddFacetCounts implements directory.SyncStore: one update per 50 keys, nothing for none.
func (s *Store) AddFacetCounts(ctx context.Context, deltas map[string]int) error {
	var keys []string
	for k, d := range deltas {
		if d != 0 {
			keys = append(keys, k)
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), 50)
		expr := "ADD "
		names := map[string]string{}
		vals := map[string]types.AttributeValue{}
		for i, k := range keys[:n] {
			if i > 0 {
				expr += ", "
			}
			expr += placeholder("#k", i) + " " + placeholder(":v", i)
			names[placeholder("#k", i)] = "c_" + k
			vals[placeholder(":v", i)] = nv(int64(deltas[k]))
		}
		keys = keys[n:]
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: key(pkDirectory, skFacets),
			UpdateExpression: aws.String(expr), ExpressionAttributeNames: names, ExpressionAttributeValues: vals,
		})
		if err != nil {
			return fmt.Errorf("add facet counts: %w", translate(err))
		}
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

// FacetCounts returns the number of agents under each facet key (0 for unknown keys).
func (s *Store) FacetCounts(ctx context.Context, keys []string) (map[string]int, error) {
	names := map[string]string{}
	proj := ""
	for i, k := range keys {
		if i > 0 {
			proj += ", "
		}
		proj += placeholder("#k", i)
		names[placeholder("#k", i)] = "c_" + k
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(pkDirectory, skFacets),
		ProjectionExpression: aws.String(proj), ExpressionAttributeNames: names,
	})
	if err != nil {
		return nil, fmt.Errorf("facet counts: %w", translate(err))
	}
	counts := map[string]int{}
	for _, k := range keys {
		counts[k] = integer(out.Item, "c_"+k)
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
