// Conformance checks of nats.go's KeyValueManager and KeyValue (nats.go 1.22, Debian's
// golang-github-nats-io-go-nats-dev) against a NATS KV server: streamkv's NATS port or
// nats-server. Every method of both interfaces is called and its result checked.
//
// Writes go through -w, reads, keys, histories and watches through -r (another node of
// a cluster, or the same server). One line per check, "PASS <name>" or
// "FAIL <name>: <why>"; the exit code is 1 when any check failed.
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o conformance .
//	./conformance -w 127.0.0.1:4222 -r 127.0.0.1:4222 -bucket go1
//
// With -watch <keys> it only watches -bucket through -r (which may list several
// servers) and prints what it receives, for nats/leader_change.test.ts.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

const waitFor = 10 * time.Second

var failed = false

func check(name string, err error) {
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("PASS %s\n", name)
}

// errCode is the JetStream err_code inside err (10071, 10059, ...), or 0.
func errCode(err error) int {
	var api *nats.APIError
	if errors.As(err, &api) {
		return int(api.ErrorCode)
	}
	return 0
}

func expectErr(got error, want error) error {
	if !errors.Is(got, want) {
		return fmt.Errorf("want error %q, got %v", want, got)
	}
	return nil
}

func expectCode(got error, code int) error {
	if errCode(got) != code {
		return fmt.Errorf("want err_code %d, got %v (err_code %d)", code, got, errCode(got))
	}
	return nil
}

// next reads one update of a watcher (nil is the end of the initial values).
func next(w nats.KeyWatcher) (nats.KeyValueEntry, error) {
	select {
	case e, ok := <-w.Updates():
		if !ok {
			return nil, errors.New("the watcher's channel closed")
		}
		return e, nil
	case <-time.After(waitFor):
		return nil, errors.New("no update within 10 s")
	}
}

// initial reads a watcher's initial values up to its nil marker.
func initial(w nats.KeyWatcher) ([]nats.KeyValueEntry, error) {
	var out []nats.KeyValueEntry
	for i := 0; i < 1000; i++ {
		e, err := next(w)
		if err != nil || e == nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, errors.New("more than 1000 initial values")
}

// puts writes the values to key, in order.
func puts(kv nats.KeyValue, key string, values ...string) error {
	for _, v := range values {
		if _, err := kv.PutString(key, v); err != nil {
			return err
		}
	}
	return nil
}

// watched is the initial values of a new watcher (which it stops).
func watched(kv nats.KeyValue, keys string, opts ...nats.WatchOpt) ([]nats.KeyValueEntry, error) {
	w, err := kv.Watch(keys, opts...)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	return initial(w)
}

func short(es []nats.KeyValueEntry) string {
	parts := make([]string, 0, len(es))
	for _, e := range es {
		op := map[nats.KeyValueOp]string{nats.KeyValuePut: "PUT", nats.KeyValueDelete: "DEL", nats.KeyValuePurge: "PURGE"}[e.Operation()]
		parts = append(parts, fmt.Sprintf("%s=%q:%s", e.Key(), e.Value(), op))
	}
	return strings.Join(parts, " ")
}

func expectEntries(es []nats.KeyValueEntry, want string) error {
	if got := short(es); got != want {
		return fmt.Errorf("want [%s], got [%s]", want, got)
	}
	return nil
}

func main() {
	wURL := flag.String("w", "127.0.0.1:4222", "server the writes go to")
	rURL := flag.String("r", "", "server the reads go to (default: -w)")
	bucket := flag.String("bucket", "gocfg", "bucket name prefix (three buckets are made)")
	watchKeys := flag.String("watch", "", "instead of the checks: watch these keys of -bucket through -r, until stdin closes")
	flag.Parse()
	if *rURL == "" {
		rURL = wURL
	}
	if *watchKeys != "" {
		nc, js := connect(*rURL)
		fmt.Printf("CONNECTED %s\n", nc.ConnectedUrl())
		watchUntilEOF(js, *bucket, *watchKeys)
		return
	}
	_, wjs := connect(*wURL)
	_, rjs := connect(*rURL)
	run(wjs, rjs, *bucket)
	if failed {
		os.Exit(1)
	}
}

// watchUntilEOF prints "ENTRY <revision>" for each entry a watcher delivers, and
// "READY" after the initial values, until stdin closes (a test drives it across a
// leader change: the client reconnects and its ordered consumer recreates itself).
func watchUntilEOF(js nats.JetStreamContext, bucket, keys string) {
	kv, err := js.KeyValue(bucket)
	if err != nil {
		fmt.Printf("FAIL KeyValue: %v\n", err)
		os.Exit(1)
	}
	w, err := kv.Watch(keys)
	if err != nil {
		fmt.Printf("FAIL Watch: %v\n", err)
		os.Exit(1)
	}
	defer w.Stop()
	eof := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				close(eof)
				return
			}
		}
	}()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				fmt.Println("FAIL the watcher's channel closed")
				os.Exit(1)
			}
			if e == nil {
				fmt.Println("READY")
			} else {
				fmt.Printf("ENTRY %d\n", e.Revision())
			}
		case <-eof:
			return
		}
	}
}

func connect(url string) (*nats.Conn, nats.JetStreamContext) {
	// url may list several servers (comma-separated): the client connects to the first
	// and reconnects to the next.
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.DontRandomize(),
		nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		fmt.Printf("FAIL connect %s: %v\n", url, err)
		os.Exit(1)
	}
	js, err := nc.JetStream(nats.MaxWait(waitFor))
	if err != nil {
		fmt.Printf("FAIL jetstream %s: %v\n", url, err)
		os.Exit(1)
	}
	return nc, js
}

func run(wjs, rjs nats.JetStreamContext, name string) {
	cfg := &nats.KeyValueConfig{Bucket: name, History: 5, Description: "conformance"}
	kv, err := wjs.CreateKeyValue(cfg)
	check("CreateKeyValue", err)
	if err != nil {
		return
	}
	_, err = wjs.CreateKeyValue(cfg)
	check("CreateKeyValue again with the same config", err)
	_, err = wjs.CreateKeyValue(&nats.KeyValueConfig{Bucket: name, History: 7})
	check("CreateKeyValue again with another config is 10058", expectCode(err, 10058))

	ro, err := rjs.KeyValue(name)
	check("KeyValue binds", err)
	if err != nil {
		return
	}
	check("Bucket", func() error {
		if kv.Bucket() != name || ro.Bucket() != name {
			return fmt.Errorf("%q and %q", kv.Bucket(), ro.Bucket())
		}
		return nil
	}())
	_, err = rjs.KeyValue(name + "-none")
	check("KeyValue of a missing bucket is ErrBucketNotFound", expectErr(err, nats.ErrBucketNotFound))

	check("Status of an empty bucket", func() error {
		s, err := ro.Status()
		if err != nil {
			return err
		}
		if s.Bucket() != name || s.History() != 5 || s.Values() != 0 || s.TTL() != 0 || s.BackingStore() != "JetStream" {
			return fmt.Errorf("bucket %q history %d values %d ttl %v store %q", s.Bucket(), s.History(), s.Values(), s.TTL(), s.BackingStore())
		}
		return nil
	}())

	check("Put, PutString, Get, GetRevision", func() error {
		r1, err := kv.Put("a", []byte("one"))
		if err != nil {
			return err
		}
		r2, err := kv.PutString("a", "two")
		if err != nil {
			return err
		}
		if r2 <= r1 {
			return fmt.Errorf("revisions %d then %d", r1, r2)
		}
		e, err := ro.Get("a")
		if err != nil {
			return err
		}
		if string(e.Value()) != "two" || e.Revision() != r2 || e.Key() != "a" || e.Bucket() != name || e.Operation() != nats.KeyValuePut {
			return fmt.Errorf("got %s@%d in %q", short([]nats.KeyValueEntry{e}), e.Revision(), e.Bucket())
		}
		if age := time.Since(e.Created()); age < -time.Minute || age > time.Minute {
			return fmt.Errorf("created %v", e.Created())
		}
		old, err := ro.GetRevision("a", r1)
		if err != nil {
			return err
		}
		if string(old.Value()) != "one" || old.Revision() != r1 {
			return fmt.Errorf("revision %d: %q@%d", r1, old.Value(), old.Revision())
		}
		other, err := kv.Put("other", []byte("x"))
		if err != nil {
			return err
		}
		if _, err := ro.GetRevision("a", other); !errors.Is(err, nats.ErrKeyNotFound) {
			return fmt.Errorf("another key's revision: %v", err)
		}
		return nil
	}())
	_, err = ro.Get("never")
	check("Get of a missing key is ErrKeyNotFound", expectErr(err, nats.ErrKeyNotFound))

	check("Create, Create again is ErrKeyExists, Create after Delete", func() error {
		if _, err := kv.Create("c", []byte("first")); err != nil {
			return err
		}
		if _, err := kv.Create("c", []byte("second")); !errors.Is(err, nats.ErrKeyExists) {
			return fmt.Errorf("second create: %v", err)
		}
		if err := kv.Delete("c"); err != nil {
			return err
		}
		if _, err := ro.Get("c"); !errors.Is(err, nats.ErrKeyNotFound) {
			return fmt.Errorf("get after delete: %v", err)
		}
		if _, err := kv.Create("c", []byte("again")); err != nil {
			return fmt.Errorf("create after delete: %v", err)
		}
		e, err := ro.Get("c")
		if err != nil || string(e.Value()) != "again" {
			return fmt.Errorf("get after create: %v", err)
		}
		return nil
	}())

	check("Update with the revision; a wrong or stale one is 10071", func() error {
		rev, err := kv.Put("u", []byte("v1"))
		if err != nil {
			return err
		}
		if _, err := kv.Update("u", []byte("bad"), rev+100); errCode(err) != 10071 {
			return fmt.Errorf("wrong revision: %v", err)
		}
		next, err := kv.Update("u", []byte("v2"), rev)
		if err != nil || next <= rev {
			return fmt.Errorf("update: %d %v", next, err)
		}
		if _, err := kv.Update("u", []byte("stale"), rev); errCode(err) != 10071 {
			return fmt.Errorf("stale revision: %v", err)
		}
		return nil
	}())

	check("Delete and Purge with LastRevision", func() error {
		rev, err := kv.Put("l", []byte("1"))
		if err != nil {
			return err
		}
		if err := kv.Delete("l", nats.LastRevision(rev+100)); errCode(err) != 10071 {
			return fmt.Errorf("delete, wrong revision: %v", err)
		}
		if err := kv.Delete("l", nats.LastRevision(rev)); err != nil {
			return fmt.Errorf("delete: %v", err)
		}
		h, err := ro.History("l")
		if err != nil {
			return err
		}
		if err := expectEntries(h, `l="1":PUT l="":DEL`); err != nil {
			return err
		}
		last := h[len(h)-1].Revision()
		if err := kv.Purge("l", nats.LastRevision(last+100)); errCode(err) != 10071 {
			return fmt.Errorf("purge, wrong revision: %v", err)
		}
		if err := kv.Purge("l", nats.LastRevision(last)); err != nil {
			return fmt.Errorf("purge: %v", err)
		}
		h, err = ro.History("l")
		if err != nil {
			return err
		}
		return expectEntries(h, `l="":PURGE`)
	}())

	check("Delete keeps the history, Purge leaves only its marker", func() error {
		if err := puts(kv, "d", "1", "2"); err != nil {
			return err
		}
		if err := kv.Delete("d"); err != nil {
			return err
		}
		h, err := ro.History("d")
		if err != nil {
			return err
		}
		if err := expectEntries(h, `d="1":PUT d="2":PUT d="":DEL`); err != nil {
			return err
		}
		if err := kv.Purge("d"); err != nil {
			return err
		}
		h, err = ro.History("d")
		if err != nil {
			return err
		}
		return expectEntries(h, `d="":PURGE`)
	}())

	check("History keeps at most History entries, oldest first", func() error {
		var revs []uint64
		for i := 0; i < 7; i++ {
			r, err := kv.PutString("h", fmt.Sprintf("v%d", i))
			if err != nil {
				return err
			}
			revs = append(revs, r)
		}
		h, err := ro.History("h")
		if err != nil {
			return err
		}
		if err := expectEntries(h, `h="v2":PUT h="v3":PUT h="v4":PUT h="v5":PUT h="v6":PUT`); err != nil {
			return err
		}
		if h[0].Revision() != revs[2] || h[4].Revision() != revs[6] {
			return fmt.Errorf("revisions %d..%d, want %d..%d", h[0].Revision(), h[4].Revision(), revs[2], revs[6])
		}
		return nil
	}())
	_, err = ro.History("never")
	check("History of a missing key is ErrKeyNotFound", expectErr(err, nats.ErrKeyNotFound))

	check("Keys without deleted or purged keys", func() error {
		keys, err := ro.Keys()
		if err != nil {
			return err
		}
		sort.Strings(keys)
		if got := strings.Join(keys, ","); got != "a,c,h,other,u" {
			return fmt.Errorf("keys %s", got)
		}
		return nil
	}())

	check("Watch: latest per key, the end of the initial values, then live updates", func() error {
		if _, err := kv.PutString("w.1", "a"); err != nil {
			return err
		}
		if _, err := kv.PutString("w.2", "b"); err != nil {
			return err
		}
		w, err := ro.Watch("w.*")
		if err != nil {
			return err
		}
		defer w.Stop()
		init, err := initial(w)
		if err != nil {
			return err
		}
		if err := expectEntries(init, `w.1="a":PUT w.2="b":PUT`); err != nil {
			return err
		}
		if init[0].Delta() != 1 || init[1].Delta() != 0 {
			return fmt.Errorf("deltas %d %d, want 1 0", init[0].Delta(), init[1].Delta())
		}
		rev, err := kv.PutString("w.1", "c")
		if err != nil {
			return err
		}
		if _, err := kv.PutString("x.1", "not watched"); err != nil {
			return err
		}
		if err := kv.Delete("w.2"); err != nil {
			return err
		}
		var live []nats.KeyValueEntry
		for len(live) < 2 {
			e, err := next(w)
			if err != nil {
				return err
			}
			live = append(live, e)
		}
		if live[0].Revision() != rev {
			return fmt.Errorf("live revision %d, want %d", live[0].Revision(), rev)
		}
		return expectEntries(live, `w.1="c":PUT w.2="":DEL`)
	}())

	check("Watch of keys nobody wrote: the nil marker first", func() error {
		init, err := watched(ro, "none.*")
		if err != nil || len(init) != 0 {
			return fmt.Errorf("initial %s, %v", short(init), err)
		}
		return nil
	}())

	check("Watch options: IncludeHistory, IgnoreDeletes, MetaOnly", func() error {
		if err := puts(kv, "o.x", "1", "22"); err != nil {
			return err
		}
		if err := kv.Delete("o.x"); err != nil {
			return err
		}
		if _, err := kv.PutString("o.y", "333"); err != nil {
			return err
		}
		init, err := watched(ro, "o.x", nats.IncludeHistory())
		if err == nil {
			err = expectEntries(init, `o.x="1":PUT o.x="22":PUT o.x="":DEL`)
		}
		if err != nil {
			return fmt.Errorf("IncludeHistory: %v", err)
		}
		init, err = watched(ro, "o.*", nats.IgnoreDeletes())
		if err == nil {
			err = expectEntries(init, `o.y="333":PUT`)
		}
		if err != nil {
			return fmt.Errorf("IgnoreDeletes: %v", err)
		}
		init, err = watched(ro, "o.*", nats.MetaOnly(), nats.IncludeHistory())
		if err == nil {
			err = expectEntries(init, `o.x="":PUT o.x="":PUT o.x="":DEL o.y="":PUT`)
		}
		if err != nil {
			return fmt.Errorf("MetaOnly: %v", err)
		}
		return nil
	}())

	check("WatchAll sees every key, then a live update", func() error {
		w, err := ro.WatchAll(nats.IgnoreDeletes())
		if err != nil {
			return err
		}
		defer w.Stop()
		init, err := initial(w)
		if err != nil {
			return err
		}
		keys := map[string]bool{}
		for _, e := range init {
			keys[e.Key()] = true
		}
		for _, k := range []string{"a", "c", "h", "o.y", "other", "u", "w.1", "x.1"} {
			if !keys[k] {
				return fmt.Errorf("no %s in %s", k, short(init))
			}
		}
		if _, err := kv.PutString("z", "live"); err != nil {
			return err
		}
		e, err := next(w)
		if err != nil {
			return err
		}
		return expectEntries([]nats.KeyValueEntry{e}, `z="live":PUT`)
	}())

	check("Status counts the values", func() error {
		s, err := ro.Status()
		if err != nil {
			return err
		}
		if s.Values() == 0 || s.Bytes() == 0 {
			return fmt.Errorf("values %d bytes %d", s.Values(), s.Bytes())
		}
		return nil
	}())

	check("KeyValueStoreNames and KeyValueStores list the bucket", func() error {
		found := false
		for n := range rjs.KeyValueStoreNames() {
			// nats.go 1.22 yields the stream name (KV_<bucket>), not the bucket's.
			found = found || n == "KV_"+name
		}
		if !found {
			return errors.New("not in KeyValueStoreNames")
		}
		found = false
		for s := range rjs.KeyValueStores() {
			found = found || (s.Bucket() == name && s.History() == 5)
		}
		if !found {
			return errors.New("not in KeyValueStores")
		}
		return nil
	}())

	check("PurgeDeletes keeps young markers alone, DeleteMarkersOlderThan(-1) removes them", func() error {
		if err := puts(kv, "p", "1", "2"); err != nil {
			return err
		}
		if err := kv.Delete("p"); err != nil {
			return err
		}
		if err := kv.PurgeDeletes(); err != nil {
			return err
		}
		h, err := ro.History("p")
		if err != nil {
			return err
		}
		if err := expectEntries(h, `p="":DEL`); err != nil {
			return err
		}
		if err := kv.PurgeDeletes(nats.DeleteMarkersOlderThan(-1)); err != nil {
			return err
		}
		if _, err := ro.History("p"); !errors.Is(err, nats.ErrKeyNotFound) {
			return fmt.Errorf("history after purging the markers: %v", err)
		}
		if _, err := ro.History("c"); err != nil {
			return fmt.Errorf("a live key lost its history: %v", err)
		}
		return nil
	}())

	limits(wjs, rjs, name)

	check("DeleteKeyValue, then the bucket is gone", func() error {
		if err := wjs.DeleteKeyValue(name); err != nil {
			return err
		}
		if _, err := rjs.KeyValue(name); !errors.Is(err, nats.ErrBucketNotFound) {
			return fmt.Errorf("KeyValue after delete: %v", err)
		}
		return expectErr(wjs.DeleteKeyValue(name), nats.ErrStreamNotFound)
	}())
}

// limits checks a bucket with a TTL, a value size limit and a byte limit.
func limits(wjs, rjs nats.JetStreamContext, name string) {
	bucket := name + "-lim"
	kv, err := wjs.CreateKeyValue(&nats.KeyValueConfig{
		Bucket: bucket, TTL: time.Hour, MaxValueSize: 1024, MaxBytes: 1 << 20,
	})
	check("CreateKeyValue with TTL, MaxValueSize, MaxBytes", err)
	if err != nil {
		return
	}
	check("Status reports the TTL; Keys of an empty bucket is ErrNoKeysFound", func() error {
		ro, err := rjs.KeyValue(bucket)
		if err != nil {
			return err
		}
		s, err := ro.Status()
		if err != nil {
			return err
		}
		if s.TTL() != time.Hour || s.History() != 1 {
			return fmt.Errorf("ttl %v history %d", s.TTL(), s.History())
		}
		_, err = ro.Keys()
		return expectErr(err, nats.ErrNoKeysFound)
	}())
	_, err = kv.Put("big", bytes.Repeat([]byte("x"), 2000))
	check("Put beyond MaxValueSize is 10054", expectCode(err, 10054))
	check("History 1 keeps the latest value only", func() error {
		if err := puts(kv, "k", "1", "2"); err != nil {
			return err
		}
		h, err := kv.History("k")
		if err != nil {
			return err
		}
		return expectEntries(h, `k="2":PUT`)
	}())
	check("DeleteKeyValue of the limits bucket", wjs.DeleteKeyValue(bucket))
}
