package fulltext

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// The benchmark's mailbox: FULLTEXT_BENCH_MESSAGES messages (100,000 by
// default) of about 10 KB of English-like text (a Zipf draw over common
// English words and made-up ones), with the rare word in one message of
// ten thousand.
const (
	rareWord   = "quixotically"
	commonWord = "the"
)

var commonWords = strings.Fields(`the of and to a in is it you that he was for on are with as I his they
be at one have this from or had by hot word but what some we can out other were all there when up use
your how said an each she which do their time if will way about many then them write would like so
these her long make thing see him two has look more day could go come did number sound no most people
my over know water than call first who may down side been now find any new work part take get place
made live where after back little only round man year came show every good me give our under name very
through just form sentence great think say help low line differ turn cause much mean before move right
boy old too same tell does set three want air well also play small end put home read hand port large
spell add even land here must big high such follow act why ask men change went light kind off need
house picture try us again animal point mother world near build self earth father head stand own page
should country found answer school grow study still learn plant cover food sun four between state keep
eye never last let thought city tree cross farm hard start might story saw far sea draw left late run
while press close night real life few north open seem together next white children begin got walk
example ease paper group always music those both mark often letter until mile river car feet care
second book carry took science eat room friend began idea fish mountain stop once base hear horse cut
sure watch color face wood main enough plain girl usual young ready above ever red list though feel
talk bird soon body dog family direct pose leave song measure door product black short numeral class
wind question happen complete ship area half rock order fire south problem piece told knew pass since
top whole king space heard best hour better true during hundred five remember step early hold west
ground interest reach fast verb sing listen six table travel less morning ten simple several vowel
toward war lay against pattern slow center love person money serve appear road map rain rule govern
pull cold notice voice unit power town fine certain fly fall lead cry dark machine note wait plan
figure star box noun field rest correct able pound done beauty drive stood contain front teach week
final gave green oh quick develop ocean warm free minute strong special mind behind clear tail produce
fact street inch multiply nothing course stay wheel full force blue object decide surface deep moon
island foot system busy test record boat common gold possible plane stead dry wonder laugh thousand
ago ran check game shape equate miss brought heat snow tire bring yes distant fill east paint language
among grand ball yet wave drop heart am present heavy dance engine position arm wide sail material
size vary settle speak weight general ice matter circle pair include divide syllable felt perhaps pick
sudden count square reason length represent art subject region energy hunt probable bed brother egg
ride cell believe fraction forest sit race window store summer train sleep prove lone leg exercise
wall catch mount wish sky board joy winter sat written wild instrument kept glass grass cow job edge
sign visit past soft fun bright gas weather month million bear finish happy hope flower clothe strange
gone jump baby eight village meet root buy raise solve metal whether push seven paragraph third shall
held hair describe cook floor either result burn hill safe cat century consider type law bit coast
copy phrase silent tall sand soil roll temperature finger industry value fight lie beat excite natural
view sense ear else quite broke case middle kill son lake moment scale loud spring observe child
straight consonant nation dictionary milk speed method organ pay age section dress cloud surprise
quiet stone tiny climb cool design poor lot experiment bottom key iron single stick flat twenty skin
smile crease hole trade melody trip office receive row mouth exact symbol die least trouble shout
except wrote seed tone join suggest clean break lady yard rise bad blow oil blood touch grew cent mix
team wire cost lost brown wear garden equal sent choose fell fit flow fair bank collect save control
decimal gentle woman captain practice separate difficult doctor please protect noon whose locate ring
character insect caught period indicate radio spoke atom human history effect electric expect crop
modern element hit student corner party supply bone rail imagine provide agree thus capital chair
danger fruit rich thick soldier process operate guess necessary sharp wing create neighbor wash bat
rather crowd corn compare poem string bell depend meat rub tube famous dollar stream fear sight thin
triangle planet hurry chief colony clock mine tie enter major fresh search send yellow gun allow print
dead spot desert suit current lift rose continue block chart hat sell success company subtract event
particular deal swim term opposite wife shoe shoulder spread arrange camp invent cotton born determine
quart nine truck noise level chance gather shop stretch throw shine property column molecule select
wrong gray repeat require broad prepare salt nose plural anger claim continent oxygen sugar death
pretty skill women season solution magnet silver thank branch match suffix especially fig afraid huge
sister steel discuss forward similar guide experience score apple bought led pitch coat mass card band
rope slip win dream evening condition feed tool total basic smell valley nor double seat arrive master
track parent shore division sheet substance favor connect post spend chord fat glad original share
station dad bread charge proper bar offer segment slave duck instant market degree populate chick dear
enemy reply drink occur support speech nature range steam motion path liquid log meant quotient teeth
shell neck`)

var syllables = strings.Fields("ka lo mi ne ru sa te vo bi da fe gu ho ji ku la ma no pe qui ra si tu ve wa xe yo zu an er in on ul")

// vocabulary is the common words and 50,000 made-up ones, in a fixed
// order (a Zipf draw favours the first).
func vocabulary() []string {
	r := rand.New(rand.NewPCG(1, 2))
	v := append([]string(nil), commonWords...)
	seen := map[string]bool{rareWord: true}
	for _, w := range v {
		seen[w] = true
	}
	for len(v) < len(commonWords)+50000 {
		var sb strings.Builder
		for range 2 + r.IntN(3) {
			sb.WriteString(syllables[r.IntN(len(syllables))])
		}
		if w := sb.String(); !seen[w] {
			seen[w] = true
			v = append(v, w)
		}
	}
	return v
}

// benchMessage is message i: about 10 KB of sentences.
func benchMessage(r *rand.Rand, z *rand.Zipf, vocab []string, i int) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, "From: Sender %d <sender%d@example.org>\r\nTo: reader@example.org\r\nSubject: %s %s %s\r\nMessage-ID: <%d.bench@example.org>\r\nDate: Mon, 2 Jan 2006 15:04:05 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
		i%997, i%997, vocab[z.Uint64()], vocab[z.Uint64()], vocab[z.Uint64()], i)
	line := 0
	for sb.Len() < 10000 {
		for n := 6 + r.IntN(12); n > 0; n-- {
			w := vocab[z.Uint64()]
			if n == 1 {
				w += "."
			}
			if line+len(w)+1 > 76 {
				sb.WriteString("\r\n")
				line = 0
			} else if line > 0 {
				sb.WriteByte(' ')
				line++
			}
			sb.WriteString(w)
			line += len(w)
		}
		if i%10000 == 7 && sb.Len() > 5000 && !strings.Contains(sb.String(), rareWord) {
			sb.WriteString(" " + rareWord)
		}
	}
	sb.WriteString("\r\n")
	return []byte(sb.String())
}

type benchSetup struct {
	a      *account
	n      int
	build  time.Duration
	heapMB float64
	rssMB  float64
	diskMB float64 // the index's blocks
	tokens int     // in the dictionaries
	posts  uint64  // bytes of postings
	err    error
}

func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// setupBench fills a mail store with the messages (index closed), then
// opens the index and times its build.
func setupBench(b *testing.B) *benchSetup {
	var bench benchSetup
	func() {
		n := 100000
		if v, err := strconv.Atoi(os.Getenv("FULLTEXT_BENCH_MESSAGES")); err == nil && v > 0 {
			n = v
		}
		bench.n = n
		dir := b.TempDir()
		k := sealtest.Keys(b)
		path := filepath.Join(dir, "store.db")
		st, err := localstore.Open(path, k)
		if err != nil {
			bench.err = err
			return
		}
		ms, err := mailstore.Open(docsync.New(st, nil, k, "u@example.test", nil), st, k, nil, nil)
		if err != nil {
			bench.err = err
			return
		}
		vocab := vocabulary()
		r := rand.New(rand.NewPCG(3, 4))
		z := rand.NewZipf(r, 1.07, 2, uint64(len(vocab)-1))
		for i := 0; i < n; {
			var batch []mailstore.NewMessage
			for ; i < n && len(batch) < 500; i++ {
				batch = append(batch, mailstore.NewMessage{Raw: benchMessage(r, z, vocab, i), Date: time.Now()})
			}
			if _, err := ms.AppendBatch(context.Background(), "INBOX", batch); err != nil {
				bench.err = err
				return
			}
		}
		start := time.Now()
		ix, err := Open(ms, st, Config{})
		if err != nil {
			bench.err = err
			return
		}
		bench.a = &account{path: path, k: k, st: st, ms: ms, ix: ix}
		b.Cleanup(bench.a.close)
		ctx := context.Background()
		bench.err = ix.WaitFor(ctx, func() bool {
			ix.mu.RLock()
			defer ix.mu.RUnlock()
			return len(ix.ids) >= n && len(ix.mem.docs) == 0
		})
		bench.build = time.Since(start)
		runtime.GC()
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		bench.heapMB = float64(m.HeapAlloc) / (1 << 20)
		bench.rssMB = rssMB()
		ix.mu.RLock()
		for _, sg := range ix.segs {
			bench.diskMB += float64(sg.postBlks+sg.headBlks) * blockSize / (1 << 20)
			bench.tokens += len(sg.termStart)
			bench.posts += sg.postLen
		}
		ix.mu.RUnlock()
	}()
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return &bench
}

// BenchmarkSearchBody100k: SEARCH BODY over 100,000 messages of 10 KB
// from the index, for a rare word (in one message of ten thousand), a
// common one ("the"), a substring and a phrase (candidates read to
// check); with the build time, and the heap and RSS of the process (mail
// store and index) after the build.
func BenchmarkSearchBody100k(b *testing.B) {
	s := setupBench(b)
	info, err := s.a.ms.Mailbox("INBOX")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, q string
		all     bool
	}{
		{"rare", rareWord, false},
		{"common", commonWord, false},
		{"substring", "quixot", false},
		{"phrase", "quixotically ", false},
		{"text-rare", rareWord, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			var hits int
			cpu0 := cpuTime()
			for b.Loop() {
				h, _, ok, err := s.a.ix.Search(context.Background(), "INBOX", info.UIDValidity, c.q, c.all)
				if err != nil || !ok {
					b.Fatal(err, ok)
				}
				hits = len(h)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/search")
			// CPU time, which a machine shared with other work inflates
			// less than the wall clock.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/search")
			b.ReportMetric(float64(hits), "hits")
			b.ReportMetric(s.build.Seconds(), "build-s")
			b.ReportMetric(s.heapMB, "heap-MB")
			b.ReportMetric(s.rssMB, "rss-MB")
			b.ReportMetric(float64(s.n), "messages")
			b.ReportMetric(s.diskMB, "index-MB")
			b.ReportMetric(float64(s.tokens), "tokens")
			b.ReportMetric(float64(s.posts)/(1<<20), "postings-MB")
		})
	}
}
