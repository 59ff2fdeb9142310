/*
 * fsmcheck's vfio-user test device (issue 20): a small PCI device served by
 * libvfio-user, whose migration callbacks do what a real device does, so
 * that what the conformance pack reports is libvfio-user's behaviour (its
 * lib/migration.c v2 device_state FSM, its reset handling), not this file's.
 *
 *   usage: fsmcheck-vfu-device [-v] SOCKET
 *
 * The device: BAR0, 4 KiB of registers holding the device image (64 bytes
 * of it are live state; a region access reads/writes them). While the device
 * runs it works: each transition into RUNNING or PRE_COPY advances its
 * generation counter (part of the image), so two saves taken at different
 * running points differ; in STOP nothing changes (vfio.h: "the device must
 * not change its internal state").
 *
 * The migration stream: records  "FSMV" | u32 length | image | u32 crc32.
 * Entering PRE_COPY queues the image as the initial data; entering STOP_COPY
 * queues the final image after whatever was not read yet; read_data hands
 * out the queue and returns 0 at its end (libvfio-user: "no more migration
 * data"). RESUMING collects what write_data gets; RESUMING -> STOP accepts
 * one or more complete records with good checksums (the last is loaded) and
 * otherwise fails with EINVAL (vfio.h: the driver must fail on data that is
 * "incomplete, inconsistent, or otherwise invalid").
 *
 * The reset callback (VFIO_USER_DEVICE_RESET, and a client's disconnect)
 * resets the device: power-on image, no migration data queued.
 *
 * Written for fsmcheck; no libvfio-user code is copied here (it is built
 * against the library's public header, include/libvfio-user.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvfio-user.h"

#define BAR0_SIZE 4096
#define IMAGE_SIZE 64
#define RECORD_SIZE (4 + 4 + IMAGE_SIZE + 4)
#define QUEUE_MAX (4 * RECORD_SIZE)
#define INCOMING_MAX (1 << 20)

struct device {
    uint8_t bar0[BAR0_SIZE];          /* image = bar0[0 .. IMAGE_SIZE) */
    uint32_t generation;
    vfu_migr_state_t state;
    uint8_t out[QUEUE_MAX];           /* saving: queued stream */
    size_t out_len, out_pos;
    uint8_t *in;                      /* resuming: written stream */
    size_t in_len;
    bool verbose;
};

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = v & 0xFF; p[1] = (v >> 8) & 0xFF; p[2] = (v >> 16) & 0xFF; p[3] = v >> 24;
}

static uint32_t get32(const uint8_t *p)
{
    return p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void power_on(struct device *d)
{
    for (int i = 0; i < BAR0_SIZE; i++) {
        d->bar0[i] = (uint8_t)(i * 7 + 1);
    }
    d->generation = 0;
    d->out_len = d->out_pos = 0;
    d->in_len = 0;
}

static void work(struct device *d)
{
    d->generation++;
    put32(d->bar0, d->generation);
    d->bar0[4 + d->generation % (IMAGE_SIZE - 4)] ^= (uint8_t)(d->generation * 37 + 11);
}

static void queue_record(struct device *d)
{
    if (d->out_pos > 0) {   /* drop what was read */
        memmove(d->out, d->out + d->out_pos, d->out_len - d->out_pos);
        d->out_len -= d->out_pos;
        d->out_pos = 0;
    }
    if (d->out_len + RECORD_SIZE > QUEUE_MAX) {
        d->out_len = 0;     /* unread old records are superseded by this one */
    }
    uint8_t *r = d->out + d->out_len;
    memcpy(r, "FSMV", 4);
    put32(r + 4, IMAGE_SIZE);
    memcpy(r + 8, d->bar0, IMAGE_SIZE);
    put32(r + 8 + IMAGE_SIZE, crc32_of(d->bar0, IMAGE_SIZE));
    d->out_len += RECORD_SIZE;
}

/* The last image of a stream of complete, checksummed records; NULL if none or invalid. */
static const uint8_t *parse_stream(const uint8_t *s, size_t n)
{
    const uint8_t *image = NULL;
    size_t pos = 0;
    while (pos < n) {
        if (n - pos < 8 || memcmp(s + pos, "FSMV", 4) != 0) {
            return NULL;
        }
        uint32_t len = get32(s + pos + 4);
        if (len != IMAGE_SIZE || n - pos - 8 < (size_t)len + 4) {
            return NULL;
        }
        if (get32(s + pos + 8 + len) != crc32_of(s + pos + 8, len)) {
            return NULL;
        }
        image = s + pos + 8;
        pos += 8 + len + 4;
    }
    return image;
}

static ssize_t bar0_access(vfu_ctx_t *ctx, char *buf, size_t count, loff_t offset, bool is_write)
{
    struct device *d = vfu_get_private(ctx);
    if (offset < 0 || (size_t)offset + count > BAR0_SIZE) {
        errno = EINVAL;
        return -1;
    }
    if (is_write) {
        memcpy(d->bar0 + offset, buf, count);
    } else {
        memcpy(buf, d->bar0 + offset, count);
    }
    return (ssize_t)count;
}

static int transition(vfu_ctx_t *ctx, vfu_migr_state_t state)
{
    struct device *d = vfu_get_private(ctx);
    if (d->verbose) {
        fprintf(stderr, "fsmcheck-vfu-device: transition %d -> %d\n", d->state, state);
    }
    switch (state) {
    case VFU_MIGR_STATE_RUNNING:
        work(d);
        d->out_len = d->out_pos = 0;
        break;
    case VFU_MIGR_STATE_PRE_COPY:
        work(d);
        d->out_len = d->out_pos = 0;
        queue_record(d);
        break;
    case VFU_MIGR_STATE_STOP_AND_COPY:
        if (d->state != VFU_MIGR_STATE_PRE_COPY) {
            d->out_len = d->out_pos = 0;
        }
        queue_record(d);
        break;
    case VFU_MIGR_STATE_RESUME:
        d->in_len = 0;
        break;
    case VFU_MIGR_STATE_STOP:
        if (d->state == VFU_MIGR_STATE_RESUME) {
            const uint8_t *image = parse_stream(d->in, d->in_len);
            if (image == NULL) {
                fprintf(stderr, "fsmcheck-vfu-device: invalid resume data (%zu bytes)\n", d->in_len);
                errno = EINVAL;
                return -1;
            }
            memcpy(d->bar0, image, IMAGE_SIZE);
            d->generation = get32(d->bar0);
        }
        d->out_len = d->out_pos = 0;
        break;
    default:
        errno = EINVAL;
        return -1;
    }
    d->state = state;
    return 0;
}

static ssize_t read_data(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    struct device *d = vfu_get_private(ctx);
    size_t n = d->out_len - d->out_pos;
    if (n > count) {
        n = count;
    }
    memcpy(buf, d->out + d->out_pos, n);
    d->out_pos += n;
    return (ssize_t)n;
}

static ssize_t write_data(vfu_ctx_t *ctx, void *buf, uint64_t count)
{
    struct device *d = vfu_get_private(ctx);
    if (count > INCOMING_MAX - d->in_len) {
        errno = EFBIG;
        return -1;
    }
    memcpy(d->in + d->in_len, buf, count);
    d->in_len += count;
    return (ssize_t)count;
}

static int reset(vfu_ctx_t *ctx, vfu_reset_type_t type)
{
    struct device *d = vfu_get_private(ctx);
    if (d->verbose) {
        fprintf(stderr, "fsmcheck-vfu-device: reset (type %d)\n", type);
    }
    power_on(d);
    d->state = VFU_MIGR_STATE_RUNNING;
    return 0;
}

static void die(const char *what)
{
    fprintf(stderr, "fsmcheck-vfu-device: %s: %s\n", what, strerror(errno));
    exit(EXIT_FAILURE);
}

int main(int argc, char *argv[])
{
    static struct device dev;
    int opt;
    while ((opt = getopt(argc, argv, "v")) != -1) {
        if (opt == 'v') {
            dev.verbose = true;
        } else {
            fprintf(stderr, "usage: %s [-v] SOCKET\n", argv[0]);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: %s [-v] SOCKET\n", argv[0]);
        return 2;
    }
    dev.in = malloc(INCOMING_MAX);
    if (dev.in == NULL) {
        die("malloc");
    }
    power_on(&dev);
    dev.state = VFU_MIGR_STATE_RUNNING;

    vfu_ctx_t *ctx = vfu_create_ctx(VFU_TRANS_SOCK, argv[optind], 0, &dev, VFU_DEV_TYPE_PCI);
    if (ctx == NULL) {
        die("vfu_create_ctx");
    }
    if (vfu_pci_init(ctx, VFU_PCI_TYPE_CONVENTIONAL, PCI_HEADER_TYPE_NORMAL, 0) < 0) {
        die("vfu_pci_init");
    }
    vfu_pci_set_id(ctx, 0x1b36, 0x0005, 0x1b36, 0x0005);
    if (vfu_setup_region(ctx, VFU_PCI_DEV_BAR0_REGION_IDX, BAR0_SIZE, &bar0_access,
                         VFU_REGION_FLAG_RW | VFU_REGION_FLAG_MEM, NULL, 0, -1, 0) < 0) {
        die("vfu_setup_region BAR0");
    }
    const vfu_migration_callbacks_t callbacks = {
        .version = VFU_MIGR_CALLBACKS_VERS,
        .transition = transition,
        .read_data = read_data,
        .write_data = write_data,
    };
    if (vfu_setup_device_migration_callbacks(ctx, &callbacks) < 0) {
        die("vfu_setup_device_migration_callbacks");
    }
    if (vfu_setup_device_reset_cb(ctx, reset) < 0) {
        die("vfu_setup_device_reset_cb");
    }
    if (vfu_realize_ctx(ctx) < 0) {
        die("vfu_realize_ctx");
    }
    if (vfu_attach_ctx(ctx) < 0) {
        die("vfu_attach_ctx");
    }
    int ret;
    do {
        ret = vfu_run_ctx(ctx);
    } while (ret == 0 || (ret < 0 && errno == EINTR));
    int status = (errno == ENOTCONN || errno == ESHUTDOWN) ? EXIT_SUCCESS : EXIT_FAILURE;
    if (status != EXIT_SUCCESS) {
        perror("fsmcheck-vfu-device: vfu_run_ctx");
    }
    vfu_destroy_ctx(ctx);
    free(dev.in);
    return status;
}
