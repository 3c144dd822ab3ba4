/*
 * Host CLI around ll_encode() so other languages can cross-check the C encoder.
 * Each stdin line: "version status firmware v0 ... v14" (values in PAYLOAD.md
 * order, "nan" = not measured); each stdout line: the payload in hex, or
 * "error <code>" with the negative enum ll_error.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ll_payload.h"

static int parse(char *line, unsigned *version, ll_reading *reading)
{
    char *end;
    int q;
    *version = (unsigned)strtoul(line, &end, 0);
    reading->status = (uint16_t)strtoul(end, &end, 0);
    reading->firmware = (uint16_t)strtoul(end, &end, 0);
    for (q = 0; q < LL_QUANTITY_COUNT; q++) {
        char *start = end;
        reading->value[q] = strtod(start, &end);
        if (end == start) {
            return -1;
        }
    }
    return 0;
}

int main(void)
{
    char line[2048];
    while (fgets(line, sizeof line, stdin) != NULL) {
        ll_reading reading;
        uint8_t buf[LL_PAYLOAD_MAX_SIZE];
        unsigned version;
        int n, i;
        ll_reading_init(&reading);
        if (parse(line, &version, &reading) != 0) {
            fprintf(stderr, "ll_encode: cannot parse line: %s", line);
            return 2;
        }
        n = ll_encode(&reading, version, buf, sizeof buf);
        if (n < 0) {
            printf("error %d\n", n);
            continue;
        }
        for (i = 0; i < n; i++) {
            printf("%02x", buf[i]);
        }
        putchar('\n');
    }
    return 0;
}
