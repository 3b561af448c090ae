/* bft-replica's event loop: one libuv loop drives the runtime core (core.h) with the network
 * and the clock. One TCP port per replica serves both peers and clients, told apart by the
 * first frame (HELLO from a replica, REQUEST/LEDGER_GET from a client). Peers authenticate
 * each other with a signed challenge handshake; each peer has a bounded send queue flushed
 * with one coalesced write per loop iteration, after that iteration's group-commit fsync. */
#ifndef RT_REPLICA_H
#define RT_REPLICA_H

#include <stdint.h>
#include <uv.h>

#include "replica/admit.h"
#include "replica/byz_shell.h"
#include "replica/byz_twin.h"
#include "replica/core.h"
#include "replica/metrics.h"
#include "replica/metrics_http.h"
#include "replica/net.h"
#include "replica/vqueue.h"

/* Handshake (replica/README.md): HELLO from the dialer, a HELLO_ACK challenge (the acceptor's
 * nonce, unsigned), a HELLO_ACK proof (the dialer's signature), a HELLO_ACK answer (the
 * acceptor's signature). The acceptor signs only after the dialer proved its key. */
#define RT_TAG_HELLO "transport/hello"
#define RT_HELLO_VERSION 2
#define RT_HELLO_LEN (1 + BFT_CLUSTER_ID_LEN + 4 + 4 + 32)
#define RT_HELLO_CHALLENGE_LEN 32
#define RT_HELLO_SIG_LEN BFT_SIG_LEN

/* Limits an operator may change (flags of bft-replica); zero fields take the defaults of
 * rt_limits.h. */
typedef struct rt_net_limits {
  uint32_t max_clients;      /* client and unidentified connections, all sources */
  uint32_t max_per_source;   /* the same from one remote address */
  uint32_t client_idle_ms;   /* a client connection with no frame for this long is closed */
  uint32_t frame_timeout_ms; /* a client frame, once its first byte arrived, must be complete */
  uint32_t fail_budget;      /* failed verifications per connection before it is closed */
} rt_net_limits;

typedef struct rt_options {
  const char *config, *key, *protocol, *data_dir;
  uint32_t id;
  int listen_client_port; /* 0: none */
  int log_level;
  rt_net_limits limits;
  const char *byzantine;  /* --byzantine MODES, or NULL for an honest replica */
  const bft_app *app;     /* the application (borrowed), or NULL for the key-value store */
  uv_loop_t *loop;        /* a loop to run on (borrowed), or NULL for one of its own */
  int handle_signals;     /* stop on SIGINT/SIGTERM */
  int app_watch;          /* o.app is an application over a socket: watch its connection between calls */
  void (*on_stop)(void *arg); /* called once, from the loop, when the replica begins to stop */
  void *on_stop_arg;
  uint32_t snapshot_every; /* --snapshot-every K (0: default; UINT32_MAX: off) */
  uint64_t retain_blocks;  /* --retain-blocks N + 1 (0: keep every block) */
  const char *metrics_addr; /* --metrics HOST:PORT: Prometheus endpoint, or NULL */
  uint32_t batch_max, window; /* --batch-max, --window: engine tuning (0: engine default) */
  uint32_t timeout_ms;         /* --view-timeout: the engine's base timeout (0: its default) */
  uint32_t pipeline;           /* --pipeline: PBFT's batches in flight (0: the window) */
  int unsafe_no_fsync;     /* --unsafe-no-fsync: write records but never fdatasync them */
  uint32_t verify_threads; /* --verify-threads N: 0 the default (online CPUs - 1), RT_VERIFY_INLINE
                            * for none (N = 0: every verify on the loop thread), else N */
} rt_options;
#define RT_VERIFY_INLINE UINT32_MAX

/* Why a connection or a frame was refused: counted, shown in the metrics line (off_<name>=N)
 * and logged at warn once per source per RT_SOURCE_WARN_MS with the number suppressed. */
enum rt_offence {
  RT_OFF_LIMIT_TOTAL = 0, /* client limit reached and nothing unproven to evict: refused */
  RT_OFF_LIMIT_SOURCE,    /* per-source limit reached and nothing of that source to evict */
  RT_OFF_EVICTED,         /* an unproven connection closed to admit a newer one */
  RT_OFF_BACKOFF,         /* the source is being refused after exhausting its budget */
  RT_OFF_FIRST_FRAME,     /* no first frame in time */
  RT_OFF_FRAME_TIMEOUT,   /* a frame begun but not finished in time (slow sender) */
  RT_OFF_IDLE,            /* client connection idle */
  RT_OFF_MALFORMED,       /* bad header, oversized length, undecodable or unexpected frame */
  RT_OFF_BAD_SIG,         /* request signature does not verify */
  RT_OFF_UNKNOWN_KEY,     /* request from a key outside the cluster file (no verify, no answer) */
  RT_OFF_FAIL_BUDGET,     /* connection closed: its failed-verification budget is spent */
  RT_OFF_REJECT_UNSENT,   /* signed rejection withheld (per-source rate) */
  RT_OFF_HS_RATE,         /* handshake attempts over the per-source rate */
  RT_OFF_HS_LIMIT,        /* too many handshakes in progress */
  RT_OFF_HS_FAILED,       /* handshake refused (bad proof, wrong ids, wrong cluster) */
  RT_OFF_COUNT
};

typedef struct rt_replica rt_replica;

typedef struct rt_peer {
  rt_replica *r;
  uint32_t id;
  struct sockaddr_storage addr;
  int addr_ok;
  rt_conn *conn;     /* authenticated connection */
  rt_conn *dialing;  /* our outgoing connection, before authentication */
  rt_outq q;         /* engine frames waiting for conn */
  uv_timer_t redial;
  uv_connect_t creq;
  uint32_t backoff_ms;
  uint64_t drops, frames_in, frames_out;
  uint64_t rejected; /* frames with a wrong sender or kind */
  uint32_t hs_pending; /* accepted handshakes in progress claiming this id */
} rt_peer;

struct rt_replica {
  uv_loop_t *loop;
  bft_cluster *cluster;
  bft_keypair kp;
  uint32_t self;
  const bft_engine_ops *ops;
  rt_log log;
  rt_byz_shell *byz; /* --byzantine: falsifies what we send (NULL: honest) */
  rt_byz_twin *twin; /* --byzantine equivocate: copy B (r->core is copy A), or NULL */
  rt_core core;
  int core_open, core_ready;
  int lock_fd;
  rt_peer peers[BFT_MAX_REPLICAS];
  uv_tcp_t listeners[2];
  int nlisteners;
  uv_timer_t engine_timers[BFT_MAX_TIMERS];
  uv_timer_t sweep, metrics;
  uv_prepare_t prepare;
  uv_signal_t sigint, sigterm;
  int own_loop, handle_signals, started;
  uv_poll_t app_poll;     /* the application socket, watched between calls */
  int app_watch, app_watching; /* wanted; app_poll initialised */
  const bft_app *app;
  void (*on_stop)(void *arg);
  void *on_stop_arg;
  int handles_ready;
  rt_conn *conns;     /* every open connection */
  uint32_t nconns;
  rt_net_limits lim;  /* with defaults filled in */
  rt_sources sources;
  uint8_t *spare;     /* RT_READ_CHUNK: the one read buffer shared by all connections */
  rt_conn *unproven_head, *unproven_tail; /* client-side connections not yet proven, LRU order */
  uint32_t nclient_conns, nhandshakes;
  uint64_t offences[RT_OFF_COUNT];
  rt_bucket *key_fails;  /* per client of the cluster file: failed verifications claiming its key */
  uint64_t closed_since_trim;
  uint64_t next_conn_id;
  rt_conn **dirty;    /* connections to flush this iteration */
  uint32_t ndirty;
  rt_conn **client_conn; /* client index -> the connection its last request came on */
  uint64_t client_queue_bytes;
  uint64_t prng;
  uint8_t *scratch;   /* WIRE_FRAME_MAX_BODY: replies and ledger answers are built here */
  int stopping, exit_code;
  /* counters for the metrics line */
  uint64_t frames_out, handshakes_failed, conns_refused, clients_closed;
  uint64_t last_msgs_in, last_commits, last_metrics_ms;
  rt_ratelimit rl_conn, rl_hs, rl_drop, rl_client;
  /* metrics (replica/metrics*.c) and the signed status answers (bounded by a token bucket) */
  rt_metrics m;
  int m_ready;
  rt_metrics_server msrv;
  int msrv_open;
  rt_bucket status_tokens;
  /* Client requests on proven connections wait in vq until the end of the loop iteration (or
   * until it fills), and their signatures are checked together on vpool's threads. NULL pool
   * (--verify-threads 0): every request is verified as it is read, on the loop thread. */
  rt_vpool *vpool;
  rt_vq vq;
  int vq_flushing;
  uint64_t vq_batches, vq_requests, vq_early; /* flushes, requests through vq, flushes before the iteration's end */
};

/* Everything up to a listening loop; on failure writes one line to err. */
int rt_replica_open(rt_replica *r, const rt_options *o, char *err, size_t errlen);
/* Start on the loop (timers, engine, dialing); the caller then runs the loop. 0 or 1. */
int rt_replica_start(rt_replica *r);
/* Start and run the loop until a signal or a fatal error; returns the process exit code. */
int rt_replica_run(rt_replica *r);
/* Begin a clean stop (from the loop's thread). */
void rt_replica_stop(rt_replica *r);
void rt_replica_close(rt_replica *r);
/* For the faulty-replica modes (byz_twin.c): a frame for peer `to` through the replica's own
 * send path (falsified by the other --byzantine modes, if any), and the cached reply of `core`
 * for client index `client` to the connection its last request came on. */
void rt_replica_send_peer(rt_replica *r, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len);
void rt_replica_reply(rt_replica *r, rt_core *core, uint32_t client);
/* The Prometheus exposition of everything the replica counts (metrics_render.c). */
void rt_metrics_render(void *replica, rt_prom *p);
const char *rt_offence_name(int why); /* enum rt_offence as in the metrics line */

#endif
