package localstack_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestConcurrentSecretReads reads one secret from several goroutines at once, as function
// instances starting together do. Under go test -race (make test) it fails when the
// endpoint lets the reads reach kumo together (secrets.go says why).
func TestConcurrentSecretReads(t *testing.T) {
	ep := start(t)
	ctx := context.Background()
	sm := secretsmanager.NewFromConfig(localConfig(ep.URL))
	name := fmt.Sprint("concurrent-reads-", time.Now().UnixNano())
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("s3cret")}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
				if err != nil || aws.ToString(out.SecretString) != "s3cret" {
					t.Errorf("GetSecretValue: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
