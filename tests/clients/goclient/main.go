// Drives the official Go client of OpenWhisk (github.com/apache/openwhisk-client-go, what `wsk` and wskdeploy are
// built on) against a whisk server: every resource it offers, and the errors it builds from whisk's answers.
// Usage: goclient URL UUID:KEY SUFFIX [limits]. Stops at the first surprise (exit 1, on stderr); else prints one JSON line of
// what it saw, for the Python test to check again.
package main

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/apache/openwhisk-client-go/whisk"
)

var seen = map[string]interface{}{}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

// wantErr: the call failed with a WskError whose exit code says the HTTP status (the client's status - 256).
func wantErr(err error, status int, what string) *whisk.WskError {
	werr, ok := err.(*whisk.WskError)
	if !ok {
		fail("%s: expected a WskError for %d, got %#v", what, status, err)
	}
	if werr.ExitCode != status-256 {
		fail("%s: expected exit code %d (HTTP %d), got %d: %v", what, status-256, status, werr.ExitCode, werr)
	}
	seen["error"+fmt.Sprint(status)] = werr.Error()
	return werr
}

func newClient(host, auth, namespace string) *whisk.Client {
	base, err := url.Parse(host + "/api")
	must(err, "base URL")
	client, err := whisk.NewClient(http.DefaultClient, &whisk.Config{
		Host: host, BaseURL: base, AuthToken: auth, Namespace: namespace, Version: "v1", Insecure: true})
	must(err, "client")
	return client
}

func zipped(name, text string) string {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, _ := w.Create(name)
	f.Write([]byte(text))
	w.Close()
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

func str(s string) *string { return &s }

func waitRecord(client *whisk.Client, id string) *whisk.Activation {
	for i := 0; i < 400; i++ {
		a, _, err := client.Activations.Get(id)
		if err == nil && (a.End != 0 || a.Duration == 0 && a.Response.Status == "success") { // a trigger's end is 0
			return a
		}
		time.Sleep(50 * time.Millisecond)
	}
	fail("no record for %s", id)
	return nil
}

// limits runs against a server whose blocking wait is 1 s and which allows one activation in flight at a time: a
// blocking invoke that outlasts the wait, then one more while it still runs.
func limits(host, auth, suffix string) {
	client := newClient(host, auth, "_")
	slow := "slow-" + suffix
	_, _, err := client.Actions.Insert(&whisk.Action{Name: slow, Exec: &whisk.Exec{Kind: "nodejs:default",
		Code: str("function main() { return new Promise(r => setTimeout(() => r({ done: true }), 3000)) }")}}, false)
	must(err, "slow action")
	accepted, resp, err := client.Actions.Invoke(slow, nil, true, true)
	werr, ok := err.(*whisk.WskError)
	if !ok || !werr.TimedOut || werr.ExitCode != 202 || resp.StatusCode != 202 {
		fail("blocking invoke past the wait: %#v", err)
	}
	seen["timedOut"] = werr.Error()
	_, _, err = client.Actions.Invoke(slow, nil, false, false)
	wantErr(err, 429, "invoke while the first runs")
	id := accepted.(map[string]interface{})["activationId"].(string)
	if waitRecord(client, id).Response.Result.(map[string]interface{})["done"] != true {
		fail("the late activation's record")
	}
	out, _ := json.Marshal(seen)
	fmt.Println(string(out))
}

func main() {
	host, auth, suffix := os.Args[1], os.Args[2], os.Args[3]
	if len(os.Args) > 4 && os.Args[4] == "limits" {
		limits(host, auth, suffix)
		return
	}
	name := func(base string) string { return base + "-" + suffix }
	client := newClient(host, auth, "_")

	// namespaces and the API's info
	// (List clears the client's namespace for good, as wsk's one-shot commands allow: a client of its own)
	namespaces, _, err := newClient(host, auth, "_").Namespaces.List()
	must(err, "namespaces list")
	seen["namespaces"] = namespaces
	info, _, err := client.Info.Get()
	must(err, "info")
	seen["info"] = info

	// actions: code, zip, sequence, docker; update; get with and without code; list; invoke three ways
	hello := name("hello")
	code := "function main(p) { console.log('go log', p.n); return { greeting: 'hello ' + (p.name || 'world'), n: p.n } }"
	created, _, err := client.Actions.Insert(&whisk.Action{Name: hello, Exec: &whisk.Exec{Kind: "nodejs:default", Code: str(code)},
		Parameters: whisk.KeyValueArr{{Key: "name", Value: "go"}}}, false)
	must(err, "action create")
	if created.Version != "0.0.1" || created.Exec.Kind != "nodejs:20" {
		fail("action create answered %+v", created)
	}
	_, _, err = client.Actions.Insert(&whisk.Action{Name: hello, Exec: &whisk.Exec{Kind: "nodejs:default", Code: str(code)}}, false)
	wantErr(err, 409, "action create again")
	memory := 256
	updated, _, err := client.Actions.Insert(&whisk.Action{Name: hello, Limits: &whisk.Limits{Memory: &memory}}, true)
	must(err, "action update")
	if updated.Version != "0.0.2" || *updated.Limits.Memory != 256 || updated.Exec == nil {
		fail("action update answered %+v", updated)
	}
	withCode, _, err := client.Actions.Get(hello, true)
	must(err, "action get")
	if withCode.Exec.Code == nil || *withCode.Exec.Code != code {
		fail("action get with code: %+v", withCode.Exec)
	}
	noCode, _, err := client.Actions.Get(hello, false)
	must(err, "action get without code")
	if noCode.Exec.Code != nil {
		fail("action get without code has code %q", *noCode.Exec.Code)
	}
	seen["action"] = noCode
	zipName := name("zipped")
	zipAction, _, err := client.Actions.Insert(&whisk.Action{Name: zipName, Exec: &whisk.Exec{Kind: "python:3",
		Code: str(zipped("__main__.py", "def main(args):\n    return {'zip': True}\n")), Binary: new(bool)}}, false)
	must(err, "zip action create")
	if zipAction.Exec.Binary == nil || !*zipAction.Exec.Binary {
		fail("zip action not binary: %+v", zipAction.Exec)
	}
	seqName := name("seq")
	_, _, err = client.Actions.Insert(&whisk.Action{Name: seqName, Exec: &whisk.Exec{Kind: "sequence",
		Components: []string{"/_/" + hello, "/_/" + zipName}}}, false)
	must(err, "sequence create")
	dockerName := name("docker")
	docker, _, err := client.Actions.Insert(&whisk.Action{Name: dockerName, Exec: &whisk.Exec{Kind: "blackbox", Image: "openwhisk/dockerskeleton"}}, false)
	must(err, "docker action create")
	if docker.Exec.Image != "openwhisk/dockerskeleton" {
		fail("docker action: %+v", docker.Exec)
	}
	page1, _, err := client.Actions.List("", &whisk.ActionListOptions{Limit: 2})
	must(err, "action list")
	page2, _, err := client.Actions.List("", &whisk.ActionListOptions{Limit: 2, Skip: 2})
	must(err, "action list skip")
	if len(page1) != 2 || len(page2) < 2 || page1[0].Name == page2[0].Name {
		fail("action pages: %+v / %+v", page1, page2)
	}

	result, _, err := client.Actions.Invoke(hello, map[string]interface{}{"n": 1}, true, true)
	must(err, "invoke result")
	if result.(map[string]interface{})["greeting"] != "hello go" {
		fail("invoke result: %#v", result)
	}
	blocking, _, err := client.Actions.Invoke(hello, map[string]interface{}{"n": 2}, true, false)
	must(err, "invoke blocking")
	record := blocking.(map[string]interface{})
	if record["response"].(map[string]interface{})["status"] != "success" {
		fail("invoke blocking: %#v", record)
	}
	started, _, err := client.Actions.Invoke(hello, map[string]interface{}{"n": 3}, false, false)
	must(err, "invoke non-blocking")
	id := started.(map[string]interface{})["activationId"].(string)

	// activations: get, result, logs, list with filters, count
	stored := waitRecord(client, id)
	seen["activation"] = stored
	res, _, err := client.Activations.Result(id)
	must(err, "activation result")
	if !res.Success || res.Status != "success" || res.Result.(map[string]interface{})["n"].(json.Number) != "3" {
		fail("activation result: %+v", res)
	}
	logs, _, err := client.Activations.Logs(id)
	must(err, "activation logs")
	if len(logs.Logs) != 1 || !strings.HasSuffix(logs.Logs[0], "stdout: go log 3") {
		fail("activation logs: %#v", logs.Logs)
	}
	listed, _, err := client.Activations.List(&whisk.ActivationListOptions{Name: hello, Limit: 1, Skip: 0,
		Since: stored.Start, Upto: stored.Start})
	must(err, "activation list")
	if len(listed) != 1 || listed[0].ActivationID != id {
		fail("activation list: %+v", listed)
	}
	docs, _, err := client.Activations.List(&whisk.ActivationListOptions{Name: hello, Limit: 3, Docs: true})
	must(err, "activation list docs")
	if len(docs) != 3 || docs[0].Response.Result == nil {
		fail("activation list docs: %+v", docs)
	}
	count, _, err := client.Activations.Count(&whisk.ActivationCountOptions{Name: hello})
	must(err, "activation count")
	if count.Activations != 3 {
		fail("activation count: %+v", count)
	}

	seqResult, _, err := client.Actions.Invoke(seqName, nil, true, true)
	must(err, "invoke sequence")
	if seqResult.(map[string]interface{})["zip"] != true {
		fail("sequence result: %#v", seqResult)
	}

	// packages: create, bind, get, list, public listing
	pkg := name("pkg")
	publish := true
	_, _, err = client.Packages.Insert(&whisk.Package{Name: pkg, Publish: &publish,
		Parameters: whisk.KeyValueArr{{Key: "p", Value: 1}}}, false)
	must(err, "package create")
	_, _, err = client.Actions.Insert(&whisk.Action{Name: pkg + "/inner", Exec: &whisk.Exec{Kind: "nodejs:default", Code: str(code)}}, false)
	must(err, "action in package")
	binding := name("bind")
	_, _, err = client.Packages.Insert(&whisk.BindingPackage{Name: binding, Binding: whisk.Binding{Namespace: "_", Name: pkg},
		Parameters: whisk.KeyValueArr{{Key: "b", Value: 2}}}, false)
	must(err, "binding create")
	bound, _, err := client.Packages.Get(binding)
	must(err, "binding get")
	if bound.Binding == nil || bound.Binding.Name != pkg || len(bound.Actions) != 1 {
		fail("binding get: %+v", bound)
	}
	seen["binding"] = bound
	inPkg, _, err := client.Actions.List(pkg, &whisk.ActionListOptions{Limit: 10})
	must(err, "action list in package")
	if len(inPkg) != 1 || inPkg[0].Name != "inner" {
		fail("actions in package: %+v", inPkg)
	}
	pkgs, _, err := client.Packages.List(&whisk.PackageListOptions{Limit: 200})
	must(err, "package list")
	if len(pkgs) < 2 {
		fail("package list: %+v", pkgs)
	}
	system := newClient(host, auth, "whisk.system")
	public, _, err := system.Packages.List(&whisk.PackageListOptions{Public: true, Limit: 200})
	must(err, "public package list")
	names := []string{}
	for _, p := range public {
		names = append(names, p.Name)
	}
	seen["public"] = names
	alarms, _, err := system.Packages.Get("alarms")
	must(err, "whisk.system/alarms")
	seen["alarmFeeds"] = len(alarms.Feeds)

	// triggers, feeds and rules
	trigger := name("trig")
	_, _, err = client.Triggers.Insert(&whisk.Trigger{Name: trigger, Parameters: whisk.KeyValueArr{{Key: "t", Value: true}}}, false)
	must(err, "trigger create")
	fired, resp, err := client.Triggers.Fire(trigger, map[string]interface{}{"n": 4})
	must(err, "fire without rules")
	seen["fireWithoutRules"] = map[string]interface{}{"status": resp.StatusCode, "activationId": fired.ActivationId}
	rule := name("rule")
	made, _, err := client.Rules.Insert(&whisk.Rule{Name: rule, Trigger: "/_/" + trigger, Action: "/_/" + hello}, false)
	must(err, "rule create")
	if made.Status != "active" {
		fail("rule create: %+v", made)
	}
	off, _, err := client.Rules.SetState(rule, "inactive")
	must(err, "rule disable")
	got, _, err := client.Rules.Get(rule)
	must(err, "rule get")
	if got.Status != "inactive" {
		fail("rule after disable: %+v / %+v", off, got)
	}
	_, _, err = client.Rules.SetState(rule, "active")
	must(err, "rule enable")
	got, _, err = client.Rules.Get(rule)
	must(err, "rule get")
	seen["rule"] = got
	fired, resp, err = client.Triggers.Fire(trigger, map[string]interface{}{"n": 5})
	must(err, "fire")
	if resp.StatusCode != 202 || len(fired.ActivationId) != 32 {
		fail("fire: %d %+v", resp.StatusCode, fired)
	}
	waitRecord(client, fired.ActivationId)
	tUpdated, _, err := client.Triggers.Insert(&whisk.Trigger{Name: trigger, Annotations: whisk.KeyValueArr{{Key: "x", Value: 1}}}, true)
	must(err, "trigger update")
	if tUpdated.Version != "0.0.2" || len(tUpdated.Rules) != 1 {
		fail("trigger update: %+v", tUpdated)
	}
	rules, _, err := client.Rules.List(&whisk.RuleListOptions{Limit: 200})
	must(err, "rule list")
	triggers, _, err := client.Triggers.List(&whisk.TriggerListOptions{Limit: 200})
	must(err, "trigger list")
	if len(rules) < 1 || len(triggers) < 1 {
		fail("lists: %+v %+v", rules, triggers)
	}
	feedTrigger := name("alarm")
	_, _, err = client.Triggers.Insert(&whisk.Trigger{Name: feedTrigger,
		Annotations: whisk.KeyValueArr{{Key: "feed", Value: "/whisk.system/alarms/alarm"}}}, false)
	must(err, "feed trigger create")
	feedArgs := map[string]interface{}{"lifecycleEvent": "CREATE", "triggerName": "/_/" + feedTrigger, "authKey": auth,
		"cron": "0 0 1 1 *"}
	feed, _, err := system.Actions.Invoke("alarms/alarm", feedArgs, true, true)
	must(err, "feed create")
	seen["feedCreate"] = feed
	feedArgs["lifecycleEvent"] = "READ"
	feedRead, _, err := system.Actions.Invoke("alarms/alarm", feedArgs, true, true)
	must(err, "feed read")
	seen["feedRead"] = feedRead
	feedArgs = map[string]interface{}{"lifecycleEvent": "DELETE", "triggerName": "/_/" + feedTrigger, "authKey": auth}
	_, _, err = system.Actions.Invoke("alarms/alarm", feedArgs, true, true)
	must(err, "feed delete")
	_, _, err = client.Triggers.Delete(feedTrigger)
	must(err, "feed trigger delete")

	// routes through the API gateway's contract
	created2, _, err := client.Apis.Insert(&whisk.ApiCreateRequest{ApiDoc: &whisk.Api{Namespace: "_", ApiName: "goapi",
		GatewayBasePath: "/go" + suffix, GatewayRelPath: "/hello", GatewayMethod: "GET", Id: "API:_:/go" + suffix,
		Action: &whisk.ApiAction{Name: hello, Namespace: "guest", BackendMethod: "GET",
			BackendUrl: host + "/api/v1/web/guest/default/" + hello + ".json", Auth: auth}}},
		&whisk.ApiCreateRequestOptions{SpaceGuid: strings.Split(auth, ":")[0], AccessToken: "DUMMY", ResponseType: "json"}, false)
	must(err, "api create")
	seen["apiUrl"] = created2.BaseUrl
	apis, _, err := client.Apis.List(&whisk.ApiListRequestOptions{ApiOptions: whisk.ApiOptions{
		SpaceGuid: strings.Split(auth, ":")[0], AccessToken: "DUMMY"}, Limit: 50})
	must(err, "api list")
	if len(apis.Apis) < 1 {
		fail("api list: %+v", apis)
	}
	gotApi, _, err := client.Apis.Get(&whisk.ApiGetRequest{}, &whisk.ApiGetRequestOptions{ApiBasePath: "/go" + suffix,
		SpaceGuid: strings.Split(auth, ":")[0], AccessToken: "DUMMY"})
	must(err, "api get")
	if len(gotApi.Apis) != 1 || gotApi.Apis[0].ApiValue.Swagger.Paths["/hello"].Get == nil {
		fail("api get: %+v", gotApi)
	}
	_, err = client.Apis.Delete(&whisk.ApiDeleteRequest{}, &whisk.ApiDeleteRequestOptions{ApiBasePath: "/go" + suffix,
		SpaceGuid: strings.Split(auth, ":")[0], AccessToken: "DUMMY"})
	must(err, "api delete")
	_, _, err = client.Apis.Get(&whisk.ApiGetRequest{}, &whisk.ApiGetRequestOptions{ApiBasePath: "/go" + suffix,
		SpaceGuid: strings.Split(auth, ":")[0], AccessToken: "DUMMY"})
	seen["apiGetAfterDelete"] = fmt.Sprint(err)

	// errors: what the client builds from each of whisk's answers
	_, _, err = client.Actions.List("", &whisk.ActionListOptions{Limit: 201})
	wantErr(err, 400, "limit 201")
	_, _, err = newClient(host, strings.Split(auth, ":")[0]+":"+strings.Repeat("x", 64), "_").Actions.List("", nil)
	wantErr(err, 401, "bad key")
	_, _, err = newClient(host, auth, "whisk.system").Actions.Insert(&whisk.Action{Name: name("nope"),
		Exec: &whisk.Exec{Kind: "nodejs:default", Code: str(code)}}, false)
	wantErr(err, 403, "another namespace")
	_, _, err = client.Actions.Get(name("missing"), false)
	wantErr(err, 404, "missing action")
	_, _, err = client.Actions.Invoke(hello, map[string]interface{}{"big": strings.Repeat("x", 1100000)}, true, true)
	wantErr(err, 413, "payload too large")
	failing := name("fails")
	_, _, err = client.Actions.Insert(&whisk.Action{Name: failing, Exec: &whisk.Exec{Kind: "nodejs:default",
		Code: str("function main() { return { error: 'it broke' } }")}}, false)
	must(err, "failing action")
	_, _, err = client.Actions.Invoke(failing, nil, true, true)
	appErr := wantErr(err, 502, "application error, result only")
	seen["error502result"] = map[string]interface{}{"message": appErr.Error(), "application": appErr.ApplicationError}
	_, _, err = client.Actions.Invoke(failing, nil, true, false)
	appErr = wantErr(err, 502, "application error, record")
	seen["error502record"] = map[string]interface{}{"message": appErr.Error(), "application": appErr.ApplicationError}

	// deletes
	_, err = client.Rules.Delete(rule)
	must(err, "rule delete")
	deleted, _, err := client.Triggers.Delete(trigger)
	must(err, "trigger delete")
	if deleted.Name != trigger {
		fail("trigger delete answered %+v", deleted)
	}
	_, err = client.Packages.Delete(binding)
	must(err, "binding delete")
	_, err = client.Packages.Delete(pkg)
	wantErr(err, 409, "non-empty package")
	_, err = client.Actions.Delete(pkg + "/inner")
	must(err, "action delete in package")
	_, err = client.Packages.Delete(pkg)
	must(err, "package delete")
	for _, a := range []string{seqName, hello, zipName, dockerName, failing} {
		_, err = client.Actions.Delete(a)
		must(err, "action delete "+a)
	}
	_, err = client.Actions.Delete(hello)
	wantErr(err, 404, "deleted action")

	out, _ := json.Marshal(seen)
	fmt.Println(string(out))
}
