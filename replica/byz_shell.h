/* bft-replica --byzantine MODES: the faulty-replica modes (replica/byzantine.h) applied to the
 * frames a real replica sends its peers, with `delay:MS` carried out on the libuv loop. */
#ifndef RT_BYZ_SHELL_H
#define RT_BYZ_SHELL_H

#include <stddef.h>
#include <stdint.h>

#include "replica/byzantine.h"
#include "replica/net.h"

struct rt_replica;
typedef struct rt_byz_shell rt_byz_shell;
/* Hands a frame to peer `to`'s send queue (the replica's own path). */
typedef void (*rt_byz_enqueue_fn)(struct rt_replica *r, uint32_t to, rt_frame *f);

/* Parse spec and set up; logs the loud warning line. 0, or BFT_E_* with one line in err. */
int rt_byz_shell_open(rt_byz_shell **b, struct rt_replica *r, const char *spec, rt_byz_enqueue_fn enqueue, char *err,
                      size_t errlen);
/* One frame for peer `to` (a broadcast is sent once per peer). */
void rt_byz_shell_send(rt_byz_shell *b, uint32_t to, uint8_t kind, const uint8_t *body, uint32_t len);
/* The enum rt_byz_mode bits in force. */
uint32_t rt_byz_shell_modes(const rt_byz_shell *b);
/* "byzantine=MODES byz_dropped=.. ..." for the metrics line. */
void rt_byz_shell_describe(const rt_byz_shell *b, char *buf, size_t cap);
/* Frees everything (the timer handle once the loop has closed it). */
void rt_byz_shell_close(rt_byz_shell *b);

#endif
