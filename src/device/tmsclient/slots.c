/*
 * slots.c: installing a release as seed 000 [0083] says ("the terminal stops its running
 * application and updates its program with the download"), made safe with two slots:
 *
 *   DIR/apps/NAME/a, b    one version each: manifest, and program (app) or params
 *   DIR/apps/NAME/current a symbolic link to the running slot, replaced atomically
 *   DIR/apps/NAME/trial   while a new version is on trial: from, to, version, campaign
 *
 * An application release: stop the running one (`program stop`), write the new one into the
 * inactive slot (fsync), record the trial, switch current (rename of a new link over it,
 * fsync of the directory), start it (`program start`) and run its self-check
 * (`program self-check`), each within PX_TMS_HOOK_TIMEOUT_MS. Passed: the trial record is
 * removed (commit). Failed: current goes back to the old slot, the old version is started
 * again, and the outcome is "rolled_back". A crash in between leaves the trial record, and
 * the next pass rolls back (tmsc_recover). A parameter release has no program: its
 * self-check is its SHA-256 read back from the slot.
 */
#include "device/tmsclient/tmsc_int.h"

#include "lib/str.h"
#include "lib/time.h"

#include <dirent.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void app_dir(const tmsc_config *c, const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/apps/%s", c->data_dir, name);
}

/* "a" or "b" that current points to; "" when nothing is installed. */
static void current_slot(const char *dir, char slot[2])
{
    char link[PX_PATH_MAX + 16], target[8];
    ssize_t n;
    snprintf(link, sizeof link, "%s/current", dir);
    n = readlink(link, target, sizeof target - 1);
    slot[0] = 0;
    slot[1] = 0;
    if (n == 1 && (target[0] == 'a' || target[0] == 'b'))
        slot[0] = target[0];
}

typedef struct manifest {
    char name[PX_TMS_NAME_MAX], kind[8], version[PX_TMS_VERSION_MAX], sha256[TUF_SHA256_HEX];
    char campaign[PX_TMS_NAME_MAX];
} manifest;

static int manifest_read(const char *slotdir, manifest *m)
{
    char path[PX_PATH_MAX + 16], line[256];
    FILE *f;
    memset(m, 0, sizeof *m);
    snprintf(path, sizeof path, "%s/manifest", slotdir);
    if ((f = fopen(path, "r")) == NULL)
        return PX_ENOTFOUND;
    while (fgets(line, sizeof line, f) != NULL) {
        char *v = strchr(line, ' ');
        if (v == NULL)
            continue;
        *v++ = 0;
        v[strcspn(v, "\n")] = 0;
        if (strcmp(line, "name") == 0)
            px_strlcpy(m->name, v, sizeof m->name);
        else if (strcmp(line, "kind") == 0)
            px_strlcpy(m->kind, v, sizeof m->kind);
        else if (strcmp(line, "version") == 0)
            px_strlcpy(m->version, v, sizeof m->version);
        else if (strcmp(line, "sha256") == 0)
            px_strlcpy(m->sha256, v, sizeof m->sha256);
        else if (strcmp(line, "campaign") == 0)
            px_strlcpy(m->campaign, v, sizeof m->campaign);
    }
    fclose(f);
    return m->version[0] != 0 ? PX_OK : PX_EFORMAT;
}

int tmsc_installed(const tmsc_config *c, const char *name, char version[PX_TMS_VERSION_MAX],
                   int64_t *num)
{
    char dir[PX_PATH_MAX], slotdir[PX_PATH_MAX + 8], slot[2];
    manifest m;
    version[0] = 0;
    *num = 0;
    app_dir(c, name, dir, sizeof dir);
    current_slot(dir, slot);
    if (slot[0] == 0)
        return PX_ENOTFOUND;
    snprintf(slotdir, sizeof slotdir, "%s/%s", dir, slot);
    if (manifest_read(slotdir, &m) != PX_OK || tuf_version_parse(m.version, num, NULL) != PX_OK)
        return PX_ENOTFOUND;
    px_strlcpy(version, m.version, PX_TMS_VERSION_MAX);
    return PX_OK;
}

int tmsc_apps(const tmsc_config *c, tmsc_app *out, size_t max, size_t *n, px_error *e)
{
    char dir[PX_PATH_MAX + 8];
    DIR *d;
    struct dirent *de;
    *n = 0;
    tmsc_path(c, "apps", dir, sizeof dir);
    if ((d = opendir(dir)) == NULL)
        return errno == ENOENT ? PX_OK : px_error_set(e, PX_EIO, "%s: %s", dir, strerror(errno));
    while ((de = readdir(d)) != NULL && *n < max) {
        char adir[PX_PATH_MAX + 80], sdir[PX_PATH_MAX + 96], slot[2];
        manifest m;
        if (!tuf_name_is_valid(de->d_name))
            continue;
        snprintf(adir, sizeof adir, "%s/%s", dir, de->d_name);
        current_slot(adir, slot);
        snprintf(sdir, sizeof sdir, "%s/%s", adir, slot);
        if (slot[0] == 0 || manifest_read(sdir, &m) != PX_OK)
            continue;
        px_strlcpy(out[*n].name, de->d_name, sizeof out[*n].name);
        px_strlcpy(out[*n].kind, m.kind, sizeof out[*n].kind);
        px_strlcpy(out[*n].version, m.version, sizeof out[*n].version);
        px_strlcpy(out[*n].sha256, m.sha256, sizeof out[*n].sha256);
        out[*n].slot[0] = slot[0];
        out[*n].slot[1] = 0;
        (*n)++;
    }
    closedir(d);
    return PX_OK;
}

/* ---- the application's own commands ---------------------------------------------------- */

/* Run `DIR/apps/NAME/SLOT/program ARG` with a time limit; its output goes to
 * DIR/apps/NAME/hooks.log. 0 when it exited 0; else why in why. */
static int run_program(const tmsc_config *c, const char *name, const char *slot,
                       const char *version, const char *arg, char *why, size_t whysz)
{
    char dir[PX_PATH_MAX], prog[PX_PATH_MAX + 16], log[PX_PATH_MAX + 16], sdir[PX_PATH_MAX + 8];
    int64_t deadline;
    int status = 0;
    pid_t pid, r;
    char abs[PATH_MAX];
    /* absolute paths: the program runs in its slot, whatever the caller's directory */
    app_dir(c, name, dir, sizeof dir);
    if (realpath(dir, abs) != NULL)
        px_strlcpy(dir, abs, sizeof dir);
    snprintf(sdir, sizeof sdir, "%s/%s", dir, slot);
    snprintf(prog, sizeof prog, "%s/program", sdir);
    snprintf(log, sizeof log, "%s/hooks.log", dir);
    if (access(prog, X_OK) != 0) {
        snprintf(why, whysz, "%s %s: no program to %s", name, version, arg);
        return -1;
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        snprintf(why, whysz, "cannot start %s %s: %s", name, version, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        setpgid(0, 0);
        if (chdir(sdir) != 0)
            _exit(126);
        setenv("POSSUM_APP_NAME", name, 1);
        setenv("POSSUM_APP_VERSION", version, 1);
        setenv("POSSUM_APP_DIR", sdir, 1);
        setenv("POSSUM_TERMINAL_DIR", realpath(c->data_dir, abs) != NULL ? abs : c->data_dir, 1);
        execl(prog, prog, arg, (char *)NULL);
        _exit(127);
    }
    deadline = px_mono_ms() + PX_TMS_HOOK_TIMEOUT_MS;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0 && px_mono_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (r == 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        snprintf(why, whysz, "%s %s: %s did not finish within %d ms", name, version, arg,
                 PX_TMS_HOOK_TIMEOUT_MS);
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        snprintf(why, whysz, "%s %s: %s exited with status %d", name, version, arg,
                 WEXITSTATUS(status));
    else
        snprintf(why, whysz, "%s %s: %s was killed by signal %d", name, version, arg,
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return -1;
}

/* ---- slot files ------------------------------------------------------------------------- */

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char p[PX_PATH_MAX + 300];
        struct stat sb;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rmtree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int copy_file(const char *from, const char *to, int mode, px_error *e)
{
    char buf[65536];
    ssize_t n;
    int in = open(from, O_RDONLY | O_CLOEXEC), out;
    if (in < 0)
        return px_error_set(e, PX_EIO, "%s: %s", from, strerror(errno));
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (out < 0) {
        close(in);
        return px_error_set(e, PX_EIO, "%s: %s", to, strerror(errno));
    }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            n = -1;
            break;
        }
    close(in);
    if (n < 0 || fsync(out) != 0) {
        close(out);
        return px_error_set(e, PX_EIO, "%s: %s", to, strerror(errno));
    }
    if (close(out) != 0)
        return px_error_set(e, PX_EIO, "%s: %s", to, strerror(errno));
    return PX_OK;
}

/* Point current at slot ("" = nothing installed), atomically. */
static int switch_current(const char *dir, const char *slot, px_error *e)
{
    char link[PX_PATH_MAX + 16], tmp[PX_PATH_MAX + 24];
    snprintf(link, sizeof link, "%s/current", dir);
    snprintf(tmp, sizeof tmp, "%s/current.new", dir);
    if (slot[0] == 0) {
        if (unlink(link) != 0 && errno != ENOENT)
            return px_error_set(e, PX_EIO, "%s: %s", link, strerror(errno));
    } else {
        unlink(tmp);
        if (symlink(slot, tmp) != 0 || rename(tmp, link) != 0)
            return px_error_set(e, PX_EIO, "%s: %s", link, strerror(errno));
    }
    tmsc_fsync_dir(dir);
    return PX_OK;
}

/* Write the release into slot: the file (program 0755 or params 0644), then the manifest. */
static int fill_slot(const char *dir, const char *slot, const tuf_target *t, const char *campaign,
                     const char *file, px_error *e)
{
    char sdir[PX_PATH_MAX + 8], dst[PX_PATH_MAX + 24], text[512], sha[TUF_SHA256_HEX];
    int app = strcmp(t->kind, "app") == 0, rc;
    int64_t len;
    snprintf(sdir, sizeof sdir, "%s/%s", dir, slot);
    rmtree(sdir);
    if (mkdir(sdir, 0700) != 0)
        return px_error_set(e, PX_EIO, "%s: %s", sdir, strerror(errno));
    snprintf(dst, sizeof dst, "%s/%s", sdir, app ? "program" : "params");
    if ((rc = copy_file(file, dst, app ? 0755 : 0644, e)) != PX_OK)
        return rc;
    /* read back what landed in the slot */
    if ((rc = tmsc_file_sha256(dst, sha, &len, e)) != PX_OK)
        return rc;
    if (len != t->length || strcmp(sha, t->sha256) != 0)
        return px_error_set(e, PX_EIO, "%s: the copy in the slot does not match the release", dst);
    snprintf(dst, sizeof dst, "%s/manifest", sdir);
    snprintf(text, sizeof text,
             "name %s\nkind %s\nversion %s\nsha256 %s\ncampaign %s\n"
             "installed-ms %lld\n",
             t->name, t->kind, t->version, t->sha256, campaign, (long long)px_now_ms());
    if ((rc = tmsc_write_file(dst, text, strlen(text), 0644, e)) != PX_OK)
        return rc;
    tmsc_fsync_dir(sdir);
    return PX_OK;
}

static int trial_write(const char *dir, const char *from, const char *to, const tuf_target *t,
                       const char *campaign, px_error *e)
{
    char path[PX_PATH_MAX + 16], text[256];
    snprintf(path, sizeof path, "%s/trial", dir);
    snprintf(text, sizeof text, "from %s\nto %s\nkind %s\nversion %s\ncampaign %s\n",
             from[0] ? from : "-", to, t->kind, t->version, campaign);
    return tmsc_write_file(path, text, strlen(text), 0600, e);
}

static void trial_remove(const char *dir)
{
    char path[PX_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/trial", dir);
    unlink(path);
    tmsc_fsync_dir(dir);
}

/* Back to slot from (or to nothing), and start what runs there again. */
static void roll_back(const tmsc_config *c, const char *name, const char *dir, const char *from,
                      const char *kind, char *note, size_t notesz)
{
    px_error e = {0};
    char slotdir[PX_PATH_MAX + 8];
    manifest m;
    note[0] = 0;
    if (switch_current(dir, from, &e) != PX_OK) {
        snprintf(note, notesz, "; switching back failed: %s", px_error_text(&e));
        return;
    }
    snprintf(slotdir, sizeof slotdir, "%s/%s", dir, from);
    if (from[0] != 0 && strcmp(kind, "app") == 0 && manifest_read(slotdir, &m) == PX_OK) {
        char why[PX_TMS_REASON_MAX];
        if (run_program(c, name, from, m.version, "start", why, sizeof why) != 0)
            snprintf(note, notesz, "; restarting %s failed: %s", m.version, why);
        else
            snprintf(note, notesz, "; %s runs again", m.version);
    }
}

int tmsc_install(const tmsc_config *c, const tmsc_hooks *h, const tuf_target *t,
                 const char *campaign, const char *file, char status[16], char *reason,
                 size_t reasonsz, px_error *e)
{
    char dir[PX_PATH_MAX], from[2], to[2] = "a", why[PX_TMS_REASON_MAX], note[PX_TMS_REASON_MAX];
    char old_version[PX_TMS_VERSION_MAX] = "";
    int app = strcmp(t->kind, "app") == 0, rc;
    int64_t old_num;
    app_dir(c, t->name, dir, sizeof dir);
    if ((rc = tmsc_mkdirs(dir, e)) != PX_OK)
        return rc;
    current_slot(dir, from);
    to[0] = from[0] == 'a' ? 'b' : 'a';
    (void)tmsc_installed(c, t->name, old_version, &old_num);
    /* 1. the running application stops ([0083]) */
    if (app && from[0] != 0) {
        tmsc_say(h, "stopping %s %s", t->name, old_version);
        if (run_program(c, t->name, from, old_version, "stop", why, sizeof why) != 0) {
            px_strlcpy(status, "failed", 16);
            snprintf(reason, reasonsz, "could not stop the running application: %s", why);
            return PX_OK;
        }
    }
    /* 2. the new version into the inactive slot */
    tmsc_say(h, "installing %s %s into slot %s", t->name, t->version, to);
    if ((rc = fill_slot(dir, to, t, campaign, file, e)) != PX_OK ||
        (rc = trial_write(dir, from, to, t, campaign, e)) != PX_OK) {
        if (app && from[0] != 0)
            (void)run_program(c, t->name, from, old_version, "start", why, sizeof why);
        px_strlcpy(status, "failed", 16);
        snprintf(reason, reasonsz, "install into slot %s failed: %s", to, px_error_text(e));
        return PX_OK;
    }
    /* 3. switch, 4. start, 5. self-check */
    if ((rc = switch_current(dir, to, e)) != PX_OK) {
        trial_remove(dir);
        px_strlcpy(status, "failed", 16);
        snprintf(reason, reasonsz, "switching slots failed: %s", px_error_text(e));
        return PX_OK;
    }
    why[0] = 0;
    if (app) {
        tmsc_say(h, "starting %s %s and running its self-check", t->name, t->version);
        rc = run_program(c, t->name, to, t->version, "start", why, sizeof why) == 0 &&
                     run_program(c, t->name, to, t->version, "self-check", why, sizeof why) == 0
                 ? PX_OK
                 : PX_EAUTH;
    } else {
        char path[PX_PATH_MAX + 32], sha[TUF_SHA256_HEX];
        int64_t len = 0;
        px_error le = {0};
        snprintf(path, sizeof path, "%s/current/params", dir);
        rc = tmsc_file_sha256(path, sha, &len, &le) == PX_OK && len == t->length &&
                     strcmp(sha, t->sha256) == 0
                 ? PX_OK
                 : PX_EAUTH;
        if (rc != PX_OK)
            snprintf(why, sizeof why, "%s %s: the parameters read back do not match", t->name,
                     t->version);
    }
    if (rc == PX_OK) {
        trial_remove(dir); /* 6. commit */
        px_strlcpy(status, "installed", 16);
        snprintf(reason, reasonsz, "%s %s started and passed its self-check", t->name, t->version);
        return PX_OK;
    }
    if (app)
        (void)run_program(c, t->name, to, t->version, "stop", note, sizeof note);
    roll_back(c, t->name, dir, from, t->kind, note, sizeof note);
    trial_remove(dir);
    px_strlcpy(status, "rolled_back", 16);
    snprintf(reason, reasonsz, "%s%s", why, note);
    return PX_OK;
}

int tmsc_recover(const tmsc_config *c, const tmsc_hooks *h, tmsc_state *s, px_error *e)
{
    char dir[PX_PATH_MAX + 8];
    DIR *d;
    struct dirent *de;
    tmsc_path(c, "apps", dir, sizeof dir);
    if ((d = opendir(dir)) == NULL)
        return errno == ENOENT ? PX_OK : px_error_set(e, PX_EIO, "%s: %s", dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        char adir[PX_PATH_MAX + 80], trial[PX_PATH_MAX + 96], line[128], note[PX_TMS_REASON_MAX];
        char from[2] = "", kind[8] = "app", reason[PX_TMS_REASON_MAX];
        tmsc_offer o;
        FILE *f;
        if (!tuf_name_is_valid(de->d_name))
            continue;
        snprintf(adir, sizeof adir, "%s/%s", dir, de->d_name);
        snprintf(trial, sizeof trial, "%s/trial", adir);
        if ((f = fopen(trial, "r")) == NULL)
            continue;
        memset(&o, 0, sizeof o);
        px_strlcpy(o.name, de->d_name, sizeof o.name);
        while (fgets(line, sizeof line, f) != NULL) {
            char *v = strchr(line, ' ');
            if (v == NULL)
                continue;
            *v++ = 0;
            v[strcspn(v, "\n")] = 0;
            if (strcmp(line, "from") == 0 && (v[0] == 'a' || v[0] == 'b'))
                from[0] = v[0];
            else if (strcmp(line, "kind") == 0)
                px_strlcpy(kind, v, sizeof kind);
            else if (strcmp(line, "version") == 0)
                px_strlcpy(o.version, v, sizeof o.version);
            else if (strcmp(line, "campaign") == 0)
                px_strlcpy(o.campaign, v, sizeof o.campaign);
        }
        fclose(f);
        tmsc_say(h, "%s %s was on trial when the terminal stopped: rolling back", o.name,
                 o.version);
        roll_back(c, o.name, adir, from, kind, note, sizeof note);
        trial_remove(adir);
        snprintf(reason, sizeof reason, "interrupted during the trial of %s %s%s", o.name,
                 o.version, note);
        if (o.campaign[0] != 0 && tuf_name_is_valid(o.campaign))
            tmsc_state_queue(s, &o, "rolled_back", reason);
    }
    closedir(d);
    return PX_OK;
}
