// Command benchplot renders the output of location's BenchmarkFilterSweep
// as a Markdown table and PNG plots of ms per query against subtree size,
// one line per method.
//
//	cd internal/benchplot
//	go run . -out ../../docs/sweep sweep-postgres.txt sweep-mysql.txt sweep-sqlite.txt
//
// writes <out>-<kind>-<carve>.png (a panel per database, protocol and
// index; log-log axes) and prints the table: per point the minimum of the
// rounds of each method, townhall's time over the better baseline's, and
// whether it meets the goal of issue 15 (within 20 % + 0.3 ms of the
// better baseline, and faster than both above 10 % of the tree). A point
// found in several files is taken from the last, so that a re-run of some
// points, named after the full run, replaces them. It is a
// module of its own, so that the library does not depend on gonum.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"image/color"
	"log"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// methods are the lines of every panel, in legend order.
var methods = []string{"townhall", "openimis-in-list", "recursive-cte"}

// point is one case of the sweep: its configuration and the minimum time
// of each method.
type point struct {
	config, index, kind, carve string
	size                       int
	ms                         map[string]float64
}

var line = regexp.MustCompile(`^BenchmarkFilterSweep/(\S+?)/(indexed|unindexed)/(one|several)/(whole|carved)/(\d+)-\d+\s+\d+\s+\d+ ns/op(.*)$`)
var metric = regexp.MustCompile(`([\d.]+) (\S+)-min-ms`)

func main() {
	out := flag.String("out", "sweep", "prefix of the PNG files")
	tree := flag.Int("tree", 129851, "locations in the sweep tree (the 10 % rule)")
	flag.Parse()
	var points []point
	at := map[string]int{} // a point's configuration: its index in points
	for _, name := range flag.Args() {
		ps, err := read(name)
		if err != nil {
			log.Fatal(err)
		}
		for _, p := range ps {
			key := fmt.Sprintf("%s/%s/%s/%s/%d", p.config, p.index, p.kind, p.carve, p.size)
			if i, ok := at[key]; ok {
				points[i] = p
				continue
			}
			at[key] = len(points)
			points = append(points, p)
		}
	}
	if len(points) == 0 {
		log.Fatal("benchplot: no BenchmarkFilterSweep lines")
	}
	table(points, *tree)
	for _, kind := range []string{"one", "several"} {
		for _, carve := range []string{"whole", "carved"} {
			if err := render(points, kind, carve, fmt.Sprintf("%s-%s-%s.png", *out, kind, carve)); err != nil {
				log.Fatal(err)
			}
		}
	}
}

func read(name string) ([]point, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []point
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		size, _ := strconv.Atoi(m[5])
		p := point{config: m[1], index: m[2], kind: m[3], carve: m[4], size: size, ms: map[string]float64{}}
		for _, mm := range metric.FindAllStringSubmatch(m[6], -1) {
			v, _ := strconv.ParseFloat(mm[1], 64)
			p.ms[mm[2]] = v
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

// verdict compares townhall with the better baseline: the ratio, and
// whether the point meets the goal.
func verdict(p point, tree int) (ratio float64, ok bool) {
	th := p.ms["townhall"]
	best := math.Min(p.ms["openimis-in-list"], p.ms["recursive-cte"])
	ratio = th / best
	ok = th <= 1.2*best+0.3
	if p.size*10 > tree {
		ok = ok && th < best
	}
	return ratio, ok
}

func table(points []point, tree int) {
	fmt.Println("| database | index | roots | carve-out | size | townhall | IN list | CTE | townhall / better | goal |")
	fmt.Println("|---|---|---|---|---:|---:|---:|---:|---:|---|")
	met, all := 0, 0
	for _, p := range points {
		r, ok := verdict(p, tree)
		all++
		mark := "met"
		if ok {
			met++
		} else {
			mark = "**missed**"
		}
		fmt.Printf("| %s | %s | %s | %s | %d | %s | %s | %s | %.2f | %s |\n", p.config, p.index, p.kind, p.carve, p.size,
			ms(p.ms["townhall"]), ms(p.ms["openimis-in-list"]), ms(p.ms["recursive-cte"]), r, mark)
	}
	fmt.Printf("\n%d of %d points meet the goal.\n", met, all)
}

func ms(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

var colors = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// render draws one panel per configuration and index for the points of
// one kind and carve-out, in a grid of two columns (indexed, unindexed).
func render(points []point, kind, carve, file string) error {
	var configs []string
	for _, p := range points {
		if !slices.Contains(configs, p.config) {
			configs = append(configs, p.config)
		}
	}
	indexes := []string{"indexed", "unindexed"}
	rows, cols := len(configs), len(indexes)
	plots := make([][]*plot.Plot, rows)
	for r, config := range configs {
		plots[r] = make([]*plot.Plot, cols)
		for c, index := range indexes {
			pl := plot.New()
			pl.Title.Text = fmt.Sprintf("%s, %s, %s root(s), %s", config, index, kind, carve)
			pl.X.Label.Text = "locations in the subtrees"
			pl.Y.Label.Text = "ms per query (min)"
			pl.X.Scale, pl.Y.Scale = plot.LogScale{}, plot.LogScale{}
			pl.X.Tick.Marker, pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
			pl.Legend.Top, pl.Legend.Left = true, true
			added := 0
			for i, m := range methods {
				var xy plotter.XYs
				for _, p := range points {
					if p.config == config && p.index == index && p.kind == kind && p.carve == carve && p.ms[m] > 0 {
						xy = append(xy, plotter.XY{X: float64(p.size), Y: p.ms[m]})
					}
				}
				if len(xy) == 0 {
					continue
				}
				slices.SortFunc(xy, func(a, b plotter.XY) int { return int(a.X - b.X) })
				l, s, err := plotter.NewLinePoints(xy)
				if err != nil {
					return err
				}
				l.Color, s.Color = colors[i], colors[i]
				l.Width = vg.Points(1.5)
				pl.Add(l, s)
				pl.Legend.Add(strings.TrimSuffix(m, "-in-list"), l, s)
				added++
			}
			pl.X.Min, pl.X.Max = 1, 100_000
			if added == 0 {
				pl.Y.Min, pl.Y.Max = 0.1, 1 // no data: a log scale needs a range
			}
			plots[r][c] = pl
		}
	}
	img := vgimg.New(vg.Points(float64(cols)*420), vg.Points(float64(rows)*300))
	dc := draw.New(img)
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(10), PadY: vg.Points(10), PadTop: vg.Points(5), PadBottom: vg.Points(5), PadLeft: vg.Points(5), PadRight: vg.Points(5)}
	canvases := plot.Align(plots, t, dc)
	for r := range plots {
		for c := range plots[r] {
			plots[r][c].Draw(canvases[r][c])
		}
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
