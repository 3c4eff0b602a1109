package dynamo

import (
	"fmt"
	"strings"
	"time"

	lambdaevents "github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/shared/events"
	"github.com/federation-gateway/gateway/shared/federation"
)

// DecodeRecord reads a record of the table's stream as the change of an item that can
// make events, with the same readers the rest of this package reads the items with, so a
// change of an item's layout changes its events too. A record of any other item decodes
// to a Change with no item set. Errors: EINVALID for a record that is not one of this
// table's (no keys, keys that are not strings).
func DecodeRecord(r lambdaevents.DynamoDBEventRecord) (events.Change, error) {
	c := events.Change{EventID: r.EventID, Seq: r.Change.SequenceNumber, Time: r.Change.ApproximateCreationDateTime.Time}
	if c.EventID == "" {
		return c, federation.Errorf(federation.EINVALID, "a stream record without an eventID")
	}
	if c.Time.IsZero() || c.Time.Unix() <= 0 {
		c.Time = time.Now()
	}
	pk, okPK := stringAttr(r.Change.Keys, AttrPK)
	sk, okSK := stringAttr(r.Change.Keys, AttrSK)
	if !okPK || !okSK {
		return c, federation.Errorf(federation.EINVALID, "stream record %s has no string keys %s and %s", r.EventID, AttrPK, AttrSK)
	}
	old, err := image(r.Change.OldImage)
	if err != nil {
		return c, fmt.Errorf("stream record %s: old image: %w", r.EventID, err)
	}
	neu, err := image(r.Change.NewImage)
	if err != nil {
		return c, fmt.Errorf("stream record %s: new image: %w", r.EventID, err)
	}
	switch {
	case strings.HasPrefix(pk, agentPrefix) && sk == skRoute:
		c.Agent = &events.AgentChange{Old: ifItem(old, agentFrom), New: ifItem(neu, agentFrom)}
	case strings.HasPrefix(pk, registryPrefix) && sk == skMeta:
		c.Registry = &events.RegistryChange{Old: ifItem(old, registryState), New: ifItem(neu, registryState)}
	case strings.HasPrefix(pk, msgPrefix) && sk == skDelivery:
		// MSG#<sender scope>#<message ID>: the ID holds no '#' (messageKey).
		id := pk[strings.LastIndex(pk, "#")+1:]
		msg := func(it map[string]types.AttributeValue) events.Message { return messageFrom(id, it) }
		c.Message = &events.MessageChange{Old: ifItem(old, msg), New: ifItem(neu, msg)}
	case strings.HasPrefix(pk, transferPrefix) && sk == skState:
		c.Transfer = &events.TransferChange{Old: ifItem(old, transferEvent), New: ifItem(neu, transferEvent)}
	case strings.HasPrefix(pk, lanePrefix) && sk == skState:
		c.Lane = &events.LaneChange{Old: ifItem(old, laneEvent), New: ifItem(neu, laneEvent)}
	case strings.HasPrefix(pk, bookPrefix) && sk == skState:
		c.Book = &events.BookChange{Old: ifItem(old, bookEvent), New: ifItem(neu, bookEvent)}
	case pk == pkConn && neu != nil && str(neu, "sub_state") == events.SubPending:
		c.Subscription = &events.SubscriptionChange{Connection: sk, Subscription: str(neu, "sub_id")}
	}
	return c, nil
}

// messageFrom reads what the events of a message tell from its delivery record.
func messageFrom(id string, it map[string]types.AttributeValue) events.Message {
	return events.Message{ID: id, From: str(it, "from"), To: str(it, "to"), Status: str(it, "status"),
		TargetRegistry: str(it, "target_registry"), Reason: str(it, "reason"), Fee: str(it, "fee")}
}

// transferEvent reads what the events of a bridge transfer tell from its item. Money is
// the item's own decimal strings, passed on unparsed ("" for none moved yet).
func transferEvent(it map[string]types.AttributeValue) events.Transfer {
	t := transferFrom(it)
	return events.Transfer{ID: t.ID, Status: t.Status, Step: t.Step, From: t.From, To: t.To, Sender: t.Sender,
		Lane: t.Lane.String(), SourceRegistry: t.Lane.From, TargetRegistry: t.Lane.To,
		Amount: money(it, "amount"), Fee: money(it, "fee"), Minted: money(it, "minted"), Refunded: money(it, "refunded"), Reason: t.Reason}
}

// laneEvent reads a bridge lane's switch from its item.
func laneEvent(it map[string]types.AttributeValue) events.Lane {
	l := laneFrom(it)
	return events.Lane{ID: l.ID.String(), From: l.ID.From, To: l.ID.To, Paused: l.Paused}
}

// bookEvent reads the gateway's liquidity on a registry from its books' item (what is
// available, as the bridge wrote it).
func bookEvent(it map[string]types.AttributeValue) events.Book {
	return events.Book{Registry: str(it, "registry"), Liquidity: str(it, "available"), Low: boolean(it, "low_liquidity")}
}

// money is an amount of an item as it is stored, a decimal string; "" for zero (nothing
// moved yet).
func money(it map[string]types.AttributeValue, name string) string {
	if s := str(it, name); s != "0" {
		return s
	}
	return ""
}

// ifItem reads an image with read, nil for no image.
func ifItem[T any](it map[string]types.AttributeValue, read func(map[string]types.AttributeValue) T) *T {
	if it == nil {
		return nil
	}
	v := read(it)
	return &v
}

func stringAttr(m map[string]lambdaevents.DynamoDBAttributeValue, name string) (string, bool) {
	v, ok := m[name]
	if !ok || v.DataType() != lambdaevents.DataTypeString {
		return "", false
	}
	return v.String(), true
}

// image turns a stream image into the SDK's item, nil for none.
func image(m map[string]lambdaevents.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		av, err := attr(v, 0)
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}

// maxDepth is DynamoDB's nesting limit of an attribute value.
const maxDepth = 32

func attr(v lambdaevents.DynamoDBAttributeValue, depth int) (types.AttributeValue, error) {
	if depth > maxDepth {
		return nil, federation.Errorf(federation.EINVALID, "nested deeper than %d levels", maxDepth)
	}
	switch v.DataType() {
	case lambdaevents.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case lambdaevents.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case lambdaevents.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case lambdaevents.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case lambdaevents.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case lambdaevents.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case lambdaevents.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case lambdaevents.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case lambdaevents.DataTypeList:
		l := v.List()
		out := make([]types.AttributeValue, len(l))
		for i, e := range l {
			av, err := attr(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = av
		}
		return &types.AttributeValueMemberL{Value: out}, nil
	case lambdaevents.DataTypeMap:
		m := v.Map()
		out := make(map[string]types.AttributeValue, len(m))
		for k, e := range m {
			av, err := attr(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = av
		}
		return &types.AttributeValueMemberM{Value: out}, nil
	}
	return nil, federation.Errorf(federation.EINVALID, "an attribute value of no known type")
}
