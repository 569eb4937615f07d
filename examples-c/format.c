/* Human-readable numbers: see format.h. */
#include "format.h"

#include <stdio.h>
#include <string.h>

char *format_bytes(char buf[FORMAT_LEN], uint64_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
	double value = (double)bytes;
	size_t unit = 0;

	if (bytes < 1024) {
		snprintf(buf, FORMAT_LEN, "%u B", (unsigned)bytes);
		return buf;
	}
	value /= 1024;
	/* Switch units before the number would print as "1024.0". */
	while (value >= 1023.95 && unit + 1 < sizeof(units) / sizeof(units[0])) {
		value /= 1024;
		unit++;
	}
	snprintf(buf, FORMAT_LEN, "%.1f %s", value, units[unit]);
	return buf;
}

char *format_rate(char buf[FORMAT_LEN], double bytes_per_second)
{
	char bytes[FORMAT_LEN];

	if (!(bytes_per_second > 0) || bytes_per_second > 1e18) {
		snprintf(buf, FORMAT_LEN, "--/s");
		return buf;
	}
	snprintf(buf, FORMAT_LEN, "%s/s", format_bytes(bytes, (uint64_t)bytes_per_second));
	return buf;
}

char *format_duration(char buf[FORMAT_LEN], double seconds)
{
	unsigned long s;

	/* A week or more is a guess from a stalled rate, not an estimate. */
	if (!(seconds >= 0) || seconds >= 7 * 24 * 3600.0) {
		snprintf(buf, FORMAT_LEN, "--");
		return buf;
	}
	s = (unsigned long)(seconds + 0.5);
	if (s < 60)
		snprintf(buf, FORMAT_LEN, "%lus", s);
	else if (s < 3600)
		snprintf(buf, FORMAT_LEN, "%lum%02lus", s / 60, s % 60);
	else
		snprintf(buf, FORMAT_LEN, "%luh%02lum", s / 3600, s / 60 % 60);
	return buf;
}

char *format_digest(char buf[FORMAT_LEN], const char *digest)
{
	static const char prefix[] = "sha256:";
	const size_t keep = sizeof(prefix) - 1 + 12;

	if (!digest)
		digest = "?";
	snprintf(buf, FORMAT_LEN, "%.*s", (int)(strlen(digest) < keep ? strlen(digest) : keep), digest);
	return buf;
}

unsigned format_percent(uint64_t done, uint64_t total)
{
	if (total == 0)
		return 0;
	if (done >= total)
		return 100;
	/* Never show 100% for an unfinished transfer. */
	return (unsigned)((double)done * 100.0 / (double)total);
}
