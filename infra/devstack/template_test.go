package devstack_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/federation-gateway/gateway/infra/devstack"
	"github.com/federation-gateway/gateway/infra/localtest"
)

// The gateway's own template, read as the dev stack reads it.
func TestLoadGatewayTemplate(t *testing.T) {
	tmpl, err := devstack.LoadTemplate(localtest.TemplatePath(t), "fg", map[string]string{"Stage": "qa", "GatewayConfig": `{"registries":[]}`})
	if err != nil {
		t.Fatal(err)
	}
	var status *devstack.Function
	for i := range tmpl.Functions {
		if tmpl.Functions[i].LogicalID == "StatusFunction" {
			status = &tmpl.Functions[i]
		}
	}
	if status == nil {
		t.Fatalf("no StatusFunction in %+v", tmpl.Functions)
	}
	if status.BuildMethod != "makefile" || len(status.Routes) != 2 ||
		!slices.Contains(status.Routes, devstack.Route{Method: "GET", Path: "/api/v1/status"}) ||
		!slices.Contains(status.Routes, devstack.Route{Method: "GET", Path: "/api/v1/openapi.json"}) {
		t.Errorf("StatusFunction = %+v", status)
	}
	// Globals are merged in, intrinsics resolved.
	for k, want := range map[string]string{"STAGE": "qa", "TABLE_NAME": "fg-DirectoryTable", "CONFIG_PARAMETER": "/federation-gateway/qa/config"} {
		if got := status.Env[k]; got != want {
			t.Errorf("env %s = %q, want %q", k, got, want)
		}
	}
	if status.Timeout <= 0 || status.Timeout > 29*time.Second {
		t.Errorf("timeout %s: an HTTP API function must answer within API Gateway's 29 s", status.Timeout)
	}
	if len(tmpl.Tables) != 1 || tmpl.Tables[0].Name != "fg-DirectoryTable" {
		t.Fatalf("tables = %+v", tmpl.Tables)
	}
	if len(tmpl.Parameters) != 1 || tmpl.Parameters[0].Value != `{"registries":[]}` {
		t.Errorf("SSM parameters = %+v", tmpl.Parameters)
	}
	if tmpl.API.CORS == nil || tmpl.API.RateLimit <= 0 || tmpl.API.BurstLimit <= 0 {
		t.Errorf("HTTP API = %+v", tmpl.API)
	}
}

func TestLoadTemplateErrors(t *testing.T) {
	_, err := devstack.LoadTemplate("testdata/template.yaml", "x", map[string]string{"Nope": "1"})
	if err == nil || !strings.Contains(err.Error(), "unknown parameter Nope") {
		t.Errorf("unknown override: %v", err)
	}
}

func TestScheduleInterval(t *testing.T) {
	tests := []struct {
		expr string
		want time.Duration
		ok   bool
	}{
		{"rate(1 minute)", time.Minute, true},
		{"rate(5 minutes)", 5 * time.Minute, true},
		{"rate(2 hours)", 2 * time.Hour, true},
		{"rate(1 day)", 24 * time.Hour, true},
		{"rate(0 minutes)", 0, false},
		{"cron(0 12 * * ? *)", 0, false},
		{"rate(1 fortnight)", 0, false},
	}
	for _, tt := range tests {
		got, err := devstack.ScheduleInterval(tt.expr)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ScheduleInterval(%q) = %s, %v", tt.expr, got, err)
		}
	}
}
