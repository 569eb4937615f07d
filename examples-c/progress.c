/*
 * The progress display: see progress.h.
 *
 * olreg calls progress_callback() on our own thread (the one blocked in
 * olreg_pull() and friends). The library throttles byte events to about
 * ten a second per blob; the live display throttles again, because a
 * model can have many blobs in flight. An update that arrives too soon
 * after the last frame is not dropped but left pending, and a ticker
 * thread draws it: otherwise a transfer that stalls right after a burst
 * would show stale numbers for as long as it stalls. The lock is for that
 * thread.
 */
#include "progress.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "platform.h"

/* Redraw the live block at most this often, in seconds (the ticker draws what waits). */
#define LIVE_INTERVAL 0.1
/* Print byte counts in plain mode at most this often, in seconds. */
#define PLAIN_INTERVAL 1.0
/* How quickly the smoothed rate follows the measured one, in seconds. */
#define RATE_TAU 3.0
/* Shortest window a rate is measured over: shorter ones are mostly noise. */
#define RATE_MIN_WINDOW 0.25
#define BAR_WIDTH 20
/* A line of the live display can never be wider than this. */
#define LINE_MAX 512
/* Room for transfer_text(): five formatted numbers and some separators. */
#define TRANSFER_MAX 192
/* The manifest limit is 1000 layers by default; anything far beyond is a bug. */
#define MAX_INDEX 100000

enum layer_state {
	LAYER_UNSEEN,	/* no event about it yet */
	LAYER_QUEUED,
	LAYER_ACTIVE,
	LAYER_WAITING,
	LAYER_RETRYING,
	LAYER_VERIFYING,
	LAYER_CACHED,
	LAYER_DONE,
	LAYER_FAILED
};

/* A transfer rate smoothed over a few seconds, so the ETA does not jump about. */
struct rate {
	double time;
	uint64_t bytes;
	double per_second;
	bool primed;
};

struct layer {
	char digest[FORMAT_LEN];	/* short form, for display */
	enum layer_state state;
	uint64_t done, total;
	uint64_t printed;		/* plain mode: `done` when last printed */
	char *message;			/* why it failed or is retrying */
	struct rate rate;
};

/* A growable buffer: a live frame is written with one fwrite() so it does not flicker. */
struct strbuf {
	char *buf;
	size_t len, alloc;
};

/* The words that differ between operations. */
struct op_words {
	const char *doing, *did, *skipped;
};

static const struct op_words words[] = {
	[PROGRESS_PULL] = { "pulling", "pulled", "cached" },
	[PROGRESS_PUSH] = { "pushing", "pushed", "exists" },
	[PROGRESS_VERIFY] = { "verifying", "verified", "ok" },
	[PROGRESS_COPY] = { "copying", "copied", "exists" },
	[PROGRESS_EXPORT] = { "exporting", "exported", "exists" },
	[PROGRESS_IMPORT] = { "importing", "imported", "exists" },
};

struct progress {
	FILE *out;
	enum progress_mode mode;
	const struct op_words *words;
	char *target;

	struct layer *layers;
	size_t nlayers;

	uint64_t completed, total;
	/* Bytes counted as completed that did not move now: cached blobs, resumed parts. */
	uint64_t skipped;
	uint32_t layers_done, layers_total, layers_cached;
	bool resolved;

	double start;
	double last_draw;	/* live: last frame */
	double last_plain;	/* plain: last line of byte counts */
	int lines_drawn;	/* live: height of the block on screen */
	struct rate rate;
	struct strbuf frame;

	/* live: the ticker that draws throttled updates */
	platform_mutex lock;
	platform_cond wake;
	platform_thread ticker;
	bool ticking, pending, stopping;
};

static void sb_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (sb->len + (size_t)n + 1 > sb->alloc) {
		size_t alloc = (sb->len + (size_t)n + 1) * 2;
		char *buf = realloc(sb->buf, alloc);

		if (!buf)
			return;	/* a frame goes missing; the next one may fit */
		sb->buf = buf;
		sb->alloc = alloc;
	}
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, sb->alloc - sb->len, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

static void rate_update(struct rate *r, double now, uint64_t bytes)
{
	double window, measured;

	if (!r->primed || bytes < r->bytes) {
		r->time = now;
		r->bytes = bytes;
		r->primed = true;
		return;
	}
	window = now - r->time;
	if (window < RATE_MIN_WINDOW)
		return;
	measured = (double)(bytes - r->bytes) / window;
	if (r->per_second == 0)
		r->per_second = measured;
	else
		r->per_second += (measured - r->per_second) * window / (window + RATE_TAU);
	r->time = now;
	r->bytes = bytes;
}

static double eta(const struct rate *r, uint64_t done, uint64_t total)
{
	if (r->per_second <= 0 || total < done)
		return -1;
	return (double)(total - done) / r->per_second;
}

enum progress_mode progress_mode_for(FILE *out, bool quiet)
{
	if (quiet)
		return PROGRESS_OFF;
	return platform_is_terminal(out) ? PROGRESS_LIVE : PROGRESS_PLAIN;
}

/* The layer at `index`, growing the table as blobs appear; NULL if that fails. */
static struct layer *layer_at(struct progress *p, uint32_t index)
{
	struct layer *layers;
	size_t n;

	if (index < p->nlayers)
		return &p->layers[index];
	if (index >= MAX_INDEX)
		return NULL;
	n = index + 1 > p->layers_total ? (size_t)index + 1 : p->layers_total;
	layers = realloc(p->layers, n * sizeof(*layers));
	if (!layers)
		return NULL;
	memset(layers + p->nlayers, 0, (n - p->nlayers) * sizeof(*layers));
	p->layers = layers;
	p->nlayers = n;
	return &p->layers[index];
}

static void set_message(struct layer *l, const char *message)
{
	free(l->message);
	l->message = message ? strdup(message) : NULL;
}

/* Bytes that actually crossed the network (or the disk, for verify) so far. */
static uint64_t moved(const struct progress *p)
{
	return p->completed > p->skipped ? p->completed - p->skipped : 0;
}

/*
 * Applies an event about one blob to its layer. Returns true when the
 * layer's state changed (plain mode prints those at once), false for mere bytes.
 */
static bool apply_layer_event(struct progress *p, struct layer *l,
			      const olreg_progress *e, double now)
{
	enum layer_state before = l->state;

	format_digest(l->digest, e->digest);
	if (e->layer_total)
		l->total = e->layer_total;
	switch (e->event) {
	case OLREG_EVENT_QUEUED:
		l->state = LAYER_QUEUED;
		break;
	case OLREG_EVENT_STARTED:
		/* A resumed download starts with bytes from last time: not moved now. */
		l->state = LAYER_ACTIVE;
		l->done = l->printed = e->layer_completed;
		p->skipped += e->layer_completed;
		break;
	case OLREG_EVENT_BYTES:
		l->state = LAYER_ACTIVE;
		l->done = e->layer_completed;
		break;
	case OLREG_EVENT_CACHED:
		l->state = LAYER_CACHED;
		l->done = l->total;
		p->skipped += l->total;
		p->layers_cached++;
		break;
	case OLREG_EVENT_VERIFYING:
		l->state = LAYER_VERIFYING;
		l->done = e->layer_completed;
		break;
	case OLREG_EVENT_DONE:
		l->state = LAYER_DONE;
		l->done = l->total;
		break;
	case OLREG_EVENT_FAILED:
		l->state = LAYER_FAILED;
		set_message(l, e->message);
		break;
	case OLREG_EVENT_RETRYING:
		l->state = LAYER_RETRYING;
		set_message(l, e->message);
		break;
	case OLREG_EVENT_WAITING:
		l->state = LAYER_WAITING;
		break;
	default:
		break;	/* an event kind newer than this program */
	}
	rate_update(&l->rate, now, l->done);
	return l->state != before || e->event == OLREG_EVENT_RETRYING;
}

/* Cuts `line` to fit `width` columns, never inside a UTF-8 sequence. */
static void fit(char *line, int width)
{
	size_t max = width > 1 ? (size_t)width - 1 : 1;
	size_t len = strlen(line);

	if (len <= max)
		return;
	while (max > 0 && ((unsigned char)line[max] & 0xC0) == 0x80)
		max--;
	line[max] = '\0';
}

/* "[=====>    ] ", or "" on a terminal too narrow for it. */
static void bar(char out[BAR_WIDTH + 4], bool show, uint64_t done, uint64_t total)
{
	int filled = 0, i;

	if (!show) {
		out[0] = '\0';
		return;
	}
	if (total)
		filled = (int)((double)(done < total ? done : total) * BAR_WIDTH / (double)total);
	out[0] = '[';
	for (i = 0; i < BAR_WIDTH; i++)
		out[i + 1] = i < filled ? '=' : (i == filled ? '>' : ' ');
	out[BAR_WIDTH + 1] = ']';
	out[BAR_WIDTH + 2] = ' ';
	out[BAR_WIDTH + 3] = '\0';
}

/* "12.0 MiB/64.0 MiB  18%  5.2 MiB/s  ETA 10s", the part every transfer line shares. */
static void transfer_text(char *buf, size_t len, uint64_t done, uint64_t total,
			  const struct rate *rate)
{
	char d[FORMAT_LEN], t[FORMAT_LEN], r[FORMAT_LEN], e[FORMAT_LEN];

	snprintf(buf, len, "%s/%s  %3u%%  %s  ETA %s",
		 format_bytes(d, done), format_bytes(t, total),
		 format_percent(done, total), format_rate(r, rate->per_second),
		 format_duration(e, eta(rate, done, total)));
}

static void layer_text(const struct progress *p, const struct layer *l, bool with_bar,
		       char *buf, size_t len)
{
	char size[FORMAT_LEN], b[BAR_WIDTH + 4], transfer[TRANSFER_MAX];

	format_bytes(size, l->total);
	switch (l->state) {
	case LAYER_ACTIVE:
	case LAYER_RETRYING:
		bar(b, with_bar, l->done, l->total);
		transfer_text(transfer, sizeof(transfer), l->done, l->total, &l->rate);
		if (l->state == LAYER_RETRYING)
			snprintf(buf, len, "%s %s%s  retrying: %s", l->digest, b, transfer,
				 l->message ? l->message : "");
		else
			snprintf(buf, len, "%s %s%s", l->digest, b, transfer);
		break;
	case LAYER_QUEUED:
		snprintf(buf, len, "%s %-9s %s", l->digest, "queued", size);
		break;
	case LAYER_WAITING:
		snprintf(buf, len, "%s %-9s %s (another download has it)", l->digest, "waiting", size);
		break;
	case LAYER_VERIFYING:
		snprintf(buf, len, "%s %-9s %s", l->digest, "verifying", size);
		break;
	case LAYER_CACHED:
		snprintf(buf, len, "%s %-9s %s", l->digest, p->words->skipped, size);
		break;
	case LAYER_DONE:
		snprintf(buf, len, "%s %-9s %s", l->digest, "done", size);
		break;
	case LAYER_FAILED:
		snprintf(buf, len, "%s %-9s %s: %s", l->digest, "failed", size,
			 l->message ? l->message : "");
		break;
	case LAYER_UNSEEN:
		buf[0] = '\0';
		break;
	}
}

/* "pulled NAME: 4 blobs, 64.0 MiB in 2.1s (30.4 MiB/s), 1 cached" */
static void summary_text(const struct progress *p, char *buf, size_t len)
{
	char size[FORMAT_LEN], took[FORMAT_LEN], rate[FORMAT_LEN], cached[FORMAT_LEN];
	double elapsed = platform_now() - p->start;
	char speed[FORMAT_LEN + 4] = "";

	if (moved(p) > 0 && elapsed > 0)
		snprintf(speed, sizeof(speed), " (%s)", format_rate(rate, (double)moved(p) / elapsed));
	cached[0] = '\0';
	if (p->layers_cached)
		snprintf(cached, sizeof(cached), ", %u %s", (unsigned)p->layers_cached, p->words->skipped);
	/* Most operations take seconds: tenths say more than "0s". */
	if (elapsed < 60)
		snprintf(took, sizeof(took), "%.1fs", elapsed);
	else
		format_duration(took, elapsed);
	snprintf(buf, len, "%s %s: %u blob%s, %s in %s%s%s", p->words->did, p->target,
		 (unsigned)p->layers_total, p->layers_total == 1 ? "" : "s",
		 format_bytes(size, p->total), took, speed, cached);
}

/* Adds one line to the frame: clipped to the terminal so it never wraps, which
 * would break the cursor arithmetic of the next redraw. */
static void frame_line(struct progress *p, int width, int *lines, char *line)
{
	fit(line, width);
	sb_addf(&p->frame, "%s\033[K\n", line);
	(*lines)++;
}

static bool in_flight(const struct layer *l)
{
	return l->state == LAYER_ACTIVE || l->state == LAYER_RETRYING ||
	       l->state == LAYER_WAITING || l->state == LAYER_VERIFYING ||
	       l->state == LAYER_FAILED;
}

/*
 * Redraws the live block in place: back up over the old block, write each
 * line followed by "clear to end of line", then clear whatever the old
 * block had below the new one. With `final`, the running header and total
 * lines give way to the summary (or to nothing, after a failure).
 */
static void draw_live(struct progress *p, bool final, bool ok)
{
	char line[LINE_MAX], transfer[TRANSFER_MAX], b[BAR_WIDTH + 4];
	int width, rows, lines = 0, room;
	bool show_all, with_bar;
	size_t i, visible = 0;

	platform_terminal_size(p->out, &width, &rows);
	/* The widest line without a bar is about 75 columns. */
	with_bar = width >= 100;
	p->frame.len = 0;
	if (p->lines_drawn > 0)
		sb_addf(&p->frame, "\r\033[%dA", p->lines_drawn);

	for (i = 0; i < p->nlayers; i++)
		visible += p->layers[i].state != LAYER_UNSEEN;
	/* Header, total and the cursor's own line need room too. */
	room = rows > 6 ? rows - 3 : 3;
	show_all = visible <= (size_t)room;

	if (!final) {
		snprintf(line, sizeof(line), "%s %s (%u/%u blobs)", p->words->doing, p->target,
			 (unsigned)p->layers_done, (unsigned)p->layers_total);
		frame_line(p, width, &lines, line);
	}
	for (i = 0; i < p->nlayers; i++) {
		const struct layer *l = &p->layers[i];

		if (l->state == LAYER_UNSEEN || (!show_all && !in_flight(l)))
			continue;
		if (lines > room)
			break;
		layer_text(p, l, with_bar, line, sizeof(line));
		frame_line(p, width, &lines, line);
	}
	if (!final) {
		bar(b, with_bar, p->completed, p->total);
		transfer_text(transfer, sizeof(transfer), p->completed, p->total, &p->rate);
		snprintf(line, sizeof(line), "%-19s %s%s", "total", b, transfer);
		frame_line(p, width, &lines, line);
	} else if (ok) {
		/* The last line stays on screen: let it wrap rather than lose its end. */
		summary_text(p, line, sizeof(line));
		sb_addf(&p->frame, "%s\033[K\n", line);
		lines++;
	}
	sb_addf(&p->frame, "\033[J");
	if (p->frame.buf)
		fwrite(p->frame.buf, 1, p->frame.len, p->out);
	fflush(p->out);
	p->lines_drawn = lines;
	p->last_draw = platform_now();
	p->pending = false;
}

/* The ticker: draws an update the throttle held back, at most LIVE_INTERVAL late. */
static void tick(void *arg)
{
	struct progress *p = arg;

	platform_mutex_lock(&p->lock);
	while (!p->stopping) {
		platform_cond_wait_for(&p->wake, &p->lock, LIVE_INTERVAL);
		if (p->pending && !p->stopping)
			draw_live(p, false, false);
	}
	platform_mutex_unlock(&p->lock);
}

static void stop_ticker(struct progress *p)
{
	if (!p->ticking)
		return;
	platform_mutex_lock(&p->lock);
	p->stopping = true;
	platform_cond_signal(&p->wake);
	platform_mutex_unlock(&p->lock);
	platform_thread_join(p->ticker);
	p->ticking = false;
}

struct progress *progress_new(FILE *out, enum progress_mode mode,
			      enum progress_op op, const char *target)
{
	struct progress *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->out = out;
	p->mode = mode;
	p->words = &words[op];
	p->target = strdup(target ? target : "all blobs");
	if (!p->target) {
		free(p);
		return NULL;
	}
	p->start = platform_now();
	platform_mutex_init(&p->lock);
	platform_cond_init(&p->wake);
	/* Without a ticker the display still works, only a little staler. */
	if (mode == PROGRESS_LIVE)
		p->ticking = platform_thread_start(&p->ticker, tick, p) == 0;
	return p;
}

void progress_free(struct progress *p)
{
	size_t i;

	if (!p)
		return;
	stop_ticker(p);
	platform_cond_destroy(&p->wake);
	platform_mutex_destroy(&p->lock);
	for (i = 0; i < p->nlayers; i++)
		free(p->layers[i].message);
	free(p->layers);
	free(p->frame.buf);
	free(p->target);
	free(p);
}

static void plain_line(struct progress *p, const struct layer *l, const char *what)
{
	fprintf(p->out, "%s %s: %s\n", p->words->doing, l->digest, what);
}

/* "12.0 MiB/64.0 MiB (18%) 5.2 MiB/s ETA 10s": a log reads better without the columns. */
static void plain_transfer_text(char *buf, size_t len, const struct layer *l)
{
	char d[FORMAT_LEN], t[FORMAT_LEN], r[FORMAT_LEN], e[FORMAT_LEN];

	snprintf(buf, len, "%s/%s (%u%%) %s ETA %s",
		 format_bytes(d, l->done), format_bytes(t, l->total),
		 format_percent(l->done, l->total), format_rate(r, l->rate.per_second),
		 format_duration(e, eta(&l->rate, l->done, l->total)));
}

/* Plain mode prints what changed: states at once, byte counts once a second. */
static void plain_event(struct progress *p, struct layer *l, const olreg_progress *e,
			bool changed, double now)
{
	char size[FORMAT_LEN], text[LINE_MAX];
	size_t i;

	if (e->event == OLREG_EVENT_RESOLVED) {
		fprintf(p->out, "%s %s: %u blob%s, %s\n", p->words->doing, p->target,
			(unsigned)p->layers_total, p->layers_total == 1 ? "" : "s",
			format_bytes(size, p->total));
	} else if (l && changed) {
		switch (l->state) {
		case LAYER_ACTIVE:
			if (l->done > 0) {
				snprintf(text, sizeof(text), "resuming at %s", format_bytes(size, l->done));
				plain_line(p, l, text);
			}
			break;
		case LAYER_CACHED:
			plain_line(p, l, p->words->skipped);
			break;
		case LAYER_DONE:
			snprintf(text, sizeof(text), "done %s", format_bytes(size, l->total));
			plain_line(p, l, text);
			break;
		case LAYER_FAILED:
		case LAYER_RETRYING:
			snprintf(text, sizeof(text), "%s: %s",
				 l->state == LAYER_FAILED ? "failed" : "retrying",
				 l->message ? l->message : "");
			plain_line(p, l, text);
			break;
		case LAYER_WAITING:
			plain_line(p, l, "waiting for another download");
			break;
		default:
			break;	/* queued, verifying: too brief to be worth a line */
		}
	}
	/* Only byte lines count against the interval: the first one comes at once. */
	if (now - p->last_plain < PLAIN_INTERVAL)
		return;
	for (i = 0; i < p->nlayers; i++) {
		struct layer *active = &p->layers[i];

		if (active->state != LAYER_ACTIVE || active->done == active->printed)
			continue;
		plain_transfer_text(text, sizeof(text), active);
		plain_line(p, active, text);
		active->printed = active->done;
		p->last_plain = now;
	}
	fflush(p->out);
}

/* The fields this program reads; an older library may fill in fewer. */
#define PROGRESS_NEEDS (offsetof(olreg_progress, layers_total) + sizeof(uint32_t))

int progress_callback(void *user_data, const olreg_progress *e)
{
	struct progress *p = user_data;
	struct layer *l = NULL;
	bool changed = false;
	double now;

	if (!p || p->mode == PROGRESS_OFF || !e || e->struct_size < PROGRESS_NEEDS)
		return 0;
	platform_mutex_lock(&p->lock);
	now = platform_now();
	p->completed = e->completed;
	p->total = e->total;
	p->layers_done = e->layers_done;
	p->layers_total = e->layers_total;
	if (e->event == OLREG_EVENT_RESOLVED) {
		p->resolved = changed = true;
		p->start = now;
	}
	if (e->digest && (l = layer_at(p, e->index)) != NULL)
		changed = apply_layer_event(p, l, e, now);
	rate_update(&p->rate, now, moved(p));

	if (p->mode == PROGRESS_PLAIN)
		plain_event(p, l, e, changed, now);
	else if (p->resolved && e->event != OLREG_EVENT_FINISHED) {
		if (now - p->last_draw >= LIVE_INTERVAL)
			draw_live(p, false, false);
		else
			p->pending = true;	/* for the ticker */
	}
	platform_mutex_unlock(&p->lock);
	return 0;
}

void progress_hide(struct progress *p)
{
	if (!p || p->mode != PROGRESS_LIVE)
		return;
	platform_mutex_lock(&p->lock);
	if (p->lines_drawn > 0) {
		fprintf(p->out, "\r\033[%dA\033[J", p->lines_drawn);
		fflush(p->out);
	}
	/* Stay hidden (the ticker too) until the next event redraws at once. */
	p->lines_drawn = 0;
	p->pending = false;
	p->last_draw = 0;
	platform_mutex_unlock(&p->lock);
}

void progress_finish(struct progress *p, bool ok)
{
	char line[LINE_MAX];

	if (!p || p->mode == PROGRESS_OFF)
		return;
	if (p->mode == PROGRESS_LIVE) {
		stop_ticker(p);
		if (p->resolved)
			draw_live(p, true, ok);
		return;
	}
	if (ok) {
		summary_text(p, line, sizeof(line));
		fprintf(p->out, "%s\n", line);
		fflush(p->out);
	}
}
