package localstack_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/federation-gateway/gateway/localstack"
)

// serveEnv makes the test binary serve an endpoint until SIGTERM, as the localstack
// command does: kumo reads its data directory once, at process start, so a restart needs
// a process of its own.
const serveEnv = "LOCALSTACK_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" {
		serve()
		return
	}
	os.Exit(m.Run())
}

func serve() {
	ep, err := localstack.Start("127.0.0.1:0")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	fmt.Println(ep.URL)
	<-sig
	if err := ep.Close(); err != nil {
		fmt.Println("close:", err)
	}
}

// startPersisted runs an endpoint persisting to dir in a process of its own and returns
// its URL and a function that stops it with SIGTERM, as Ctrl-C or a service manager does.
func startPersisted(t *testing.T, dir string) (string, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"=1", localstack.DataDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "http://") {
		_ = cmd.Process.Kill()
		t.Fatalf("the endpoint process said %q: %v", line, err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("the endpoint process: %v", err)
		}
	}
	return strings.TrimSpace(line), stop
}

// A stack stopped right after a write finds the write after a restart: the endpoint saves
// the emulator's state on every orderly stop, not only on kumo's one-second timer.
func TestDataDirKeepsWritesOnStop(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(url string) *dynamodb.Client {
		return dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
			BaseEndpoint: aws.String(url)}, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	}
	key := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: "k"}}

	url, stop := startPersisted(t, dir)
	db := client(url)
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String("persisted"), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash}},
	}); err != nil {
		stop()
		t.Fatal(err)
	}
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("persisted"),
		Item: map[string]types.AttributeValue{"PK": key["PK"], "V": &types.AttributeValueMemberS{Value: "kept"}}})
	stop() // at once: kumo's timer would save a second later
	if err != nil {
		t.Fatal(err)
	}

	url, stop = startPersisted(t, dir)
	defer stop()
	out, err := client(url).GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("persisted"), Key: key})
	if err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if v, ok := out.Item["V"].(*types.AttributeValueMemberS); !ok || v.Value != "kept" {
		t.Errorf("after the restart the item is %v, want V=kept", out.Item)
	}
}
