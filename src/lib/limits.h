/*
 * limits.h: every limit possum enforces, in one place (after sqliteLimit.h).
 * A limit is a ceiling on something an outsider can make us allocate or loop over.
 */
#ifndef PX_LIMITS_H
#define PX_LIMITS_H

/* clang-format off */
/* lib */
#define PX_ERRMSG_MAX            256      /* bytes in a px_error message, NUL included */
#define PX_LOG_LINE_MAX          2048     /* one log line, after formatting */
#define PX_CONFIG_ENTRIES_MAX    512      /* key = value pairs in one config file */
#define PX_CONFIG_VALUE_MAX      1024     /* bytes in one config value */
#define PX_CONFIG_NAME_MAX       64       /* bytes in a section or key name */
#define PX_PATH_MAX              1024     /* bytes in a file path */

/* network */
#define PX_FRAME_MAX_DEFAULT     4096     /* default largest framed TCP message (bytes) */
#define PX_FRAME_MAX_CEILING     65535    /* a 2-byte length cannot say more */
#define PX_CONN_MAX_DEFAULT      1024     /* default open connections per listener */
#define PX_IDLE_TIMEOUT_MS_DEFAULT 60000  /* default idle time before a connection closes */
#define PX_OUTPUT_MAX_DEFAULT    (256 * 1024) /* unsent bytes queued per connection before reads pause */
#define PX_HTTP_BODY_MAX_DEFAULT (64 * 1024)  /* default largest HTTP request body */
#define PX_HTTP_HEADERS_MAX      (16 * 1024)  /* largest HTTP request header block */
#define PX_HTTP_ROUTES_MAX       128      /* routes on one HTTP server */
#define PX_METRICS_MAX           256      /* distinct metric series */
#define PX_LISTENERS_MAX         16       /* listeners in one daemon */
#define PX_SERVICES_MAX          16       /* services in one daemon */

/* ISO 8583 */
#define PX_ISO_FIELDS            128      /* fields 1..128 (1 is the secondary bitmap) */
#define PX_ISO_FIELD_MAX         999      /* longest field value (LLLVAR) */
#define PX_ISO_MSG_MAX           4096     /* longest packed message, framing included */

/* store */
#define PX_STORE_PARAMS_MAX      32       /* bound parameters in one statement */
#define PX_STORE_STMT_CACHE      128      /* prepared statements cached per connection */
#define PX_STORE_VALUE_MAX       (16 * 1024 * 1024) /* bytes in one bound or read text/blob value */
#define PX_STORE_SQL_MAX         (64 * 1024) /* bytes of SQL in one prepared statement */
#define PX_STORE_CONNINFO_MAX    1024     /* bytes in a PostgreSQL conninfo, NUL included */
#define PX_STORE_MIGRATIONS_MAX  9999     /* migrations in one list (NNNN_ file names) */
#define PX_STORE_BUSY_MAX_MS     600000   /* longest configurable lock wait */

/* net */
#define PX_NET_ADDR_MAX          264      /* "host:port" text, [v6] brackets and NUL included */
#define PX_NET_NAME_MAX          32       /* a listener's or link's name (metrics label) */
#define PX_CONN_MAX_CEILING      100000   /* largest configurable max_connections */
#define PX_OUTPUT_MAX_CEILING    (64 * 1024 * 1024) /* largest configurable max_output */
#define PX_HTTP_BODY_MAX_CEILING (64 * 1024 * 1024) /* largest configurable HTTP max_body */
#define PX_HTTP_HEADER_COUNT_MAX 64       /* header fields in one HTTP request */
#define PX_HTTP_SEGMENTS_MAX     16       /* path segments in one HTTP request */
#define PX_HTTP_REPLY_HEADERS_MAX 4096    /* extra header bytes a handler may add to a reply */
#define PX_TLS_NAME_MAX          256      /* certificate subject CN or server name, NUL included */
#define PX_TLS_REASON_MAX        128      /* why a TLS handshake was refused, NUL included */
#define PX_TLS_SERIAL_HEX_MAX    65       /* an offered certificate's serial in hex (32 bytes) + NUL */
#define PX_TLS_DN_MAX            256      /* an offered certificate's issuer (RFC 2253), NUL included */
#define PX_TLS_REFUSALS_PER_S    10       /* refused handshakes a listener reports per second */
#define PX_TLS_ALERT_WAIT_MS     500      /* after a failed TLS write: wait for the server's alert */
#define PX_LINK_BACKOFF_MAX_MS   60000    /* longest pause between reconnect attempts */

/* iso8583 */
#define PX_ISO_TPDU_MAX          8        /* TPDU bytes a dialect may frame (UnionPay: 5) */
#define PX_ISO_HEADER_MAX        16       /* message-header bytes a dialect may frame (UnionPay: 6) */
#define PX_ISO_DATA_MAX          (2 * PX_ISO_MSG_MAX + 256) /* decoded value bytes held by one iso8583_msg */
#define PX_ISO_DUMP_MAX          (64 * 1024) /* bytes of one human-readable message dump */

/* hsm */
#define PX_HSM_LABEL_MAX         64       /* bytes in a key label, NUL included */
#define PX_HSM_CALLER_MAX        64       /* bytes in an audit caller identifier, NUL included */
#define PX_HSM_KEYBLOCK_MAX      1024     /* characters in a key block under the LMK, NUL included */
#define PX_HSM_KCV_HEX_MAX       17       /* hex characters of a key check value, NUL included */
#define PX_HSM_KEYS_LOADED_MAX   262144   /* key handles loaded at once in one hsm */
#define PX_HSM_DATA_MAX          (64 * 1024) /* bytes MACed, encrypted or decrypted in one call */
#define PX_HSM_SECRET_MAX        256      /* bytes in an LMK passphrase or token PIN, NUL included */
#define PX_HSM_LMK_FILE_MAX      4096     /* bytes in a soft LMK file */
#define PX_HSM_AUDIT_LINE_MAX    1024     /* bytes in one audit log line, newline included */
#define PX_HSM_AUDIT_PENDING_MAX (256 * 1024) /* audit bytes buffered before a forced write */
#define PX_HSM_AUDIT_FLUSH_MS_MAX 60000   /* longest configurable audit flush interval */

/* device */
#define PX_PINPAD_SECRET_LEN     32       /* bytes in a PIN pad's device secret */
#define PX_PINPAD_SERIAL_MAX     33       /* PIN pad serial number, NUL included */
#define PX_PINPAD_SEAL_MAX       256      /* bytes of card data sealed in one call */
#define PX_POS_BATCH_MAX         500      /* transactions one terminal batch holds */
#define PX_POS_STATE_FILE_MAX    (512 * 1024) /* bytes of a terminal's state file */
#define PX_POS_TEXT_MAX          192      /* reason or payee text from the platform, NUL included */
#define PX_POS_UPLOAD_PER_MSG    8        /* entries in one batch upload 0320 (contract: 1..8) */
#define PX_POS_REVERSAL_SENDS    3        /* reversal sends per attempt before the terminal gives up for now */
#define PX_POS_STALE_FRAMES_MAX  8        /* unmatched answers skipped while waiting for one */
#define PX_POS_INPUT_MAX         128      /* one line typed at the POS screen */

/* crypto */
#define PX_TR31_OPT_BLOCKS_MAX   16       /* optional blocks kept from one TR-31 header */
#define PX_TR31_OPTDATA_MAX      2048     /* characters of optional block data in one TR-31 header */
#define PX_KEY_COMPONENTS_MAX    9        /* clear components combined into one key */
#define PX_KEYTOOL_DATA_MAX      8192     /* bytes of --data the keytool MACs or enciphers */

/* switch */
#define PX_SWITCH_ROUTES_MAX     64       /* BIN prefixes in [switch] route_bins */
#define PX_SWITCH_GROUP_MAX      4096     /* jobs in one group commit */
#define PX_SWITCH_WRITERS_MAX    16       /* writer threads (store connections) */
#define PX_SWITCH_IN_FLIGHT_MAX  100000   /* provider requests outstanding at once */
#define PX_SWITCH_CACHE_MAX      1000000  /* terminals kept in memory */
#define PX_SWITCH_OUTBOX_BATCH   200      /* reversals resent per outbox poll */
#define PX_SWITCH_RRN_BLOCK      10000    /* retrieval reference numbers taken at once */
#define PX_SWITCH_LEDGER_LEGS    8        /* entries in one ledger transaction */
#define PX_SWITCH_REPORT_ROWS    100000   /* rows one ledger report prints */

/* phonepay */
#define PX_PHONEPAY_URL_MAX      512      /* bytes in an SMS gateway or webhook URL, NUL included */
#define PX_PHONEPAY_CRED_MAX     64       /* bytes in a gateway user name, sender or env name, NUL included */
#define PX_PHONEPAY_NAME_CHARS   32       /* code points in a payee name */
#define PX_PHONEPAY_SMS_MAX      480      /* bytes of UTF-8 in one notification text */
#define PX_PHONEPAY_OUTBOX_BATCH 32       /* outbox items claimed in one delivery pass */
#define PX_PHONEPAY_REPLY_MAX    4096     /* bytes of a gateway's answer kept for the log */
#define PX_PHONEPAY_TXN_RETRIES  5        /* tries of one store transaction (lock timeouts) */
#define PX_PHONEPAY_SWEEP_ROWS   1000     /* expired rows deleted per table per sweep */
#define PX_PHONEPAY_CLEARING_LINE_MAX 1024 /* bytes in one clearing-file line */
#define PX_PHONEPAY_CLEARING_LINES_MAX 1000000 /* lines in one clearing file */
#define PX_PHONEPAY_CLEARING_FIELDS 13    /* columns of the clearing file (contract section 3) */

/* issuer */
#define PX_ISSUER_BIN_RANGES_MAX 10000    /* BIN ranges scanned for one card */
#define PX_ISSUER_PVK_CACHE      16       /* PIN verification keys kept loaded at once */
#define PX_ISSUER_PENDING_MAX    10000    /* responses held back by the latency setting */
#define PX_ISSUER_PAGE_ROWS      1000     /* journal rows read per query (clearing, lists) */
#define PX_ISSUER_TXN_RETRIES    5        /* tries of one store transaction (lock timeouts) */
#define PX_ISSUER_LATENCY_MAX_MS 600000   /* largest configurable simulated latency */

/* keyload */
#define PX_PKI_NAME_MAX          65       /* the name part of a certificate CN "role:name", NUL included */
#define PX_PKI_CN_MAX            80       /* a certificate CN "role:name", NUL included */
#define PX_PKI_SERIAL_HEX_MAX    41       /* certificate serial number in hex, NUL included */
#define PX_PKI_SAN_MAX           8        /* subjectAltName entries in one certificate */
#define PX_PKI_DAYS_MAX          7300     /* longest validity of a certificate or CRL */
#define PX_PKI_PEM_MAX           (64 * 1024) /* bytes of one PEM certificate, key or request */
#define PX_PKI_CRL_MAX           (8 * 1024 * 1024) /* bytes of a PEM CRL */
#define PX_PKI_INDEX_LINE_MAX    512      /* one line of a CA's index */
#define PX_PKI_INDEX_MAX         1000000  /* certificates one CA keeps in its index */
#define PX_TKENV_MAX             2048     /* bytes of one TK envelope (device certificate included) */
#define PX_TKENV_B64_MAX         2800     /* the same in base64, NUL included */
#define PX_HTTPS_REPLY_MAX       (4 * 1024 * 1024) /* bytes of an HTTPS reply the client reads */
#define PX_HTTPS_HEAD_MAX        (16 * 1024) /* bytes of an HTTPS reply head */
#define PX_HTTPS_URL_MAX         256      /* an https:// URL of a peer, NUL included */
#define PX_CUSTOMER_CODE_MAX     33       /* a customer code, NUL included */
#define PX_CUSTOMER_NAME_MAX     129      /* a customer name in UTF-8, NUL included */
#define PX_ORDER_NO_MAX          33       /* a production order number, NUL included */
#define PX_MTMS_CSV_LINE_MAX     512      /* bytes in one line of a production-order CSV */
#define PX_MTMS_CSV_ROWS_MAX     1000000  /* serial numbers in one CSV import */
#define PX_MTMS_CSV_ERRORS_MAX   20       /* bad lines named in one refused import */
#define PX_MTMS_OUTBOX_BATCH     200      /* TK envelopes sent to one KMS in one request */
#define PX_MTMS_PAGE_ROWS        1000     /* rows one listing query returns */
#define PX_KMS_BATCH_MAX         200      /* TK envelopes the KMS takes in one request */
#define PX_KMS_NONCE_LEN         16       /* bytes of a key-download nonce */
#define PX_KMS_CHALLENGE_TTL_MS_MAX 600000 /* longest configurable life of a download nonce */
#define PX_KMS_SWEEP_ROWS        1000     /* expired challenges deleted per sweep */

/* tms */
#define PX_TMS_SERIAL_MAX        33       /* terminal serial number, NUL included */
#define PX_TMS_NAME_MAX          65       /* package, campaign, model or group name, NUL included */
#define PX_TMS_TID_MAX           9        /* the switch's terminal id (8), NUL included */
#define PX_TMS_VERSION_MAX       24       /* "MAJOR.MINOR.PATCH" text, NUL included */
#define PX_TMS_MODELS_MAX        32       /* models one package fits or a campaign selects */
#define PX_TMS_GROUPS_MAX        16       /* groups of one terminal or selected by a campaign */
#define PX_TMS_INSTALLED_MAX     16       /* packages one terminal reports as installed */
#define PX_TMS_ROLE_KEYS_MAX     16       /* keys of one metadata role */
#define PX_TMS_ROOT_KEYS_MAX     48       /* keys listed in one root record */
#define PX_TMS_SIGS_MAX          32       /* signatures on one metadata record */
#define PX_TMS_META_MAX          (1024 * 1024) /* bytes of one metadata record */
#define PX_TMS_PACKAGE_MAX       (256LL * 1024 * 1024) /* bytes of one package file */
#define PX_TMS_CHUNK             (1024 * 1024) /* bytes per stored chunk of a package */
#define PX_TMS_TIMESTAMP_TARGETS_MAX 4096 /* releases listed in one timestamp record */
#define PX_TMS_ROOT_CHAIN_MAX    64       /* root versions a terminal walks in one update */
#define PX_TMS_WAVES_MAX         10       /* waves of one campaign */
#define PX_TMS_CAMPAIGN_SERIALS_MAX 100000 /* serial numbers listed in one campaign */
#define PX_TMS_CAMPAIGN_TARGETS_MAX 2000000 /* terminals one campaign reaches */
#define PX_TMS_UPDATES_MAX       4        /* updates offered in one check-in answer */
#define PX_TMS_WORKERS_MAX       16       /* check-in and download threads */
#define PX_TMS_DOWNLOADERS_MAX   100000   /* terminals tracked as downloading at once */
#define PX_TMS_FLAG_BATCH        1000     /* switch flags set per campaign tick */
#define PX_TMS_WRITE_BATCH       1024     /* check-in contacts written per store transaction */
#define PX_TMS_CONTACT_QUEUE_MAX 65536    /* check-in contacts waiting for the writer (then dropped) */
#define PX_TMS_REASON_MAX        256      /* reason text in a report, NUL included */
#define PX_TMS_HOOK_TIMEOUT_MS   30000    /* an application's stop, start or self-check */
#define PX_TMS_HTTP_HEAD_MAX     (16 * 1024) /* terminal: bytes of a response head */
#define PX_TMS_HTTP_BODY_MAX     (2 * 1024 * 1024) /* terminal: bytes of a JSON response */
#define PX_TMS_PAGE_ROWS         1000     /* rows one listing query returns */
/* clang-format on */

#endif
