/* bft-replica's event loop: one libuv loop drives the runtime core (core.h) with the network
 * and the clock. One TCP port per replica serves both peers and clients, told apart by the
 * first frame (HELLO from a replica, REQUEST/LEDGER_GET from a client). Peers authenticate
 * each other with a signed challenge handshake; each peer has a bounded send queue flushed
 * with one coalesced write per loop iteration, after that iteration's group-commit fsync. */
#ifndef RT_REPLICA_H
#define RT_REPLICA_H

#include <stdint.h>
#include <uv.h>

#include "replica/byz_shell.h"
#include "replica/core.h"
#include "replica/net.h"

#define RT_TAG_HELLO "transport/hello"
#define RT_HELLO_VERSION 1
#define RT_HELLO_LEN (1 + BFT_CLUSTER_ID_LEN + 4 + 4 + 32)
#define RT_HELLO_ACK_LEN (32 + BFT_SIG_LEN)

typedef struct rt_options {
  const char *config, *key, *protocol, *data_dir;
  uint32_t id;
  int listen_client_port; /* 0: none */
  int log_level;
  const char *byzantine;  /* --byzantine MODES, or NULL for an honest replica */
} rt_options;

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
} rt_peer;

struct rt_replica {
  uv_loop_t *loop;
  bft_cluster *cluster;
  bft_keypair kp;
  uint32_t self;
  const bft_engine_ops *ops;
  rt_log log;
  rt_byz_shell *byz; /* --byzantine: falsifies what we send (NULL: honest) */
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
  int handles_ready;
  rt_conn *conns;     /* every open connection */
  uint32_t nconns;
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
};

/* Everything up to a listening loop; on failure writes one line to err. */
int rt_replica_open(rt_replica *r, const rt_options *o, char *err, size_t errlen);
/* Run until a signal or a fatal error; returns the process exit code. */
int rt_replica_run(rt_replica *r);
void rt_replica_close(rt_replica *r);

#endif
