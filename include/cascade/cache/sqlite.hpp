#pragma once
/// @file
/// @brief `SqliteCache`: a persistent single-node cache in an SQLite file (WAL mode), the seed's
/// `llm_cache` table with the label, usage and cost beside the answer.
///
/// Link SQLite (`SQLite::SQLite3` from CMake's FindSQLite3) to use it.

#include <cascade/core/completion.hpp>
#include <cascade/detail/episodes.hpp>

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace cascade {

/// @brief Settings of `SqliteCache`.
struct SqliteCacheConfig {
    /// How long an answer is served after it was stored.
    std::chrono::seconds ttl{24 * 3600};
    /// How long one operation waits for a lock held by another process before it counts as a miss.
    std::chrono::milliseconds busy_timeout{50};
    /// Expired rows are purged on open and every this many puts.
    unsigned purge_every = 256;
    /// Called once when the cache starts failing and once when it recovers (an episode), never per
    /// request; default: a line on stderr.
    std::function<void(std::string_view)> log;
};

/// @brief A persistent cache in one SQLite file. Thread-safe (one connection behind a mutex).
///
/// A failure at run time (file corrupt, locked by another process, disk full) is a miss: the chain still
/// answers; `errors()` counts them and `log` hears about each episode. Only `open` reports errors, since
/// the caller asked for this file explicitly.
class SqliteCache {
public:
    using clock = std::chrono::system_clock;

    SqliteCache() = default;
    SqliteCache(SqliteCache const&) = delete;
    SqliteCache& operator=(SqliteCache const&) = delete;
    ~SqliteCache() { close(); }

    /// @brief Opens (or creates) the cache file. Returns an empty string on success, else what went wrong
    /// and where (the path and SQLite's message).
    std::string open(std::string const& path, SqliteCacheConfig cfg = {}) {
        std::lock_guard lock(mutex_);
        close_locked();
        cfg_ = std::move(cfg);
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
            std::string err = "cannot open cache file '" + path + "': " + (db_ ? sqlite3_errmsg(db_) : "out of memory");
            close_locked();
            return err;
        }
        sqlite3_busy_timeout(db_, static_cast<int>(cfg_.busy_timeout.count()));
        char const* schema =
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE IF NOT EXISTS llm_cache("
            " hash TEXT PRIMARY KEY, response TEXT NOT NULL, label TEXT NOT NULL, model TEXT NOT NULL,"
            " finish_reason TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
            " cost_usd REAL NOT NULL, created_at INTEGER NOT NULL);"
            "CREATE INDEX IF NOT EXISTS llm_cache_created ON llm_cache(created_at);";
        char* msg = nullptr;
        if (sqlite3_exec(db_, schema, nullptr, nullptr, &msg) != SQLITE_OK) {
            std::string err = "cache file '" + path + "' is not usable: " + (msg ? msg : sqlite3_errmsg(db_));
            sqlite3_free(msg);
            close_locked();
            return err;
        }
        path_ = path;
        episodes_ = std::make_unique<detail::Episodes>("sqlite cache '" + path + "'", cfg_.log);
        purge_locked(clock::now());
        return {};
    }

    bool is_open() const {
        std::lock_guard lock(mutex_);
        return db_ != nullptr;
    }

    void close() {
        std::lock_guard lock(mutex_);
        close_locked();
    }

    /// @brief The unexpired answer stored under `key`, or nothing (also on any failure).
    std::optional<Completion> get(std::string const& key, clock::time_point now = clock::now()) {
        std::lock_guard lock(mutex_);
        if (!db_) return std::nullopt;
        sqlite3_stmt* st = nullptr;
        int rc = sqlite3_prepare_v2(db_,
                                    "SELECT response, label, model, finish_reason, prompt_tokens, completion_tokens, cost_usd "
                                    "FROM llm_cache WHERE hash = ?1 AND created_at > ?2",
                                    -1, &st, nullptr);
        std::optional<Completion> out;
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 2, unix_seconds(now) - static_cast<std::int64_t>(cfg_.ttl.count()));
            rc = sqlite3_step(st);
            if (rc == SQLITE_ROW) {
                Completion c;
                c.text = column_text(st, 0);
                c.label = column_text(st, 1);
                c.model = column_text(st, 2);
                c.finish_reason = column_text(st, 3);
                c.usage.prompt_tokens = static_cast<std::uint32_t>(sqlite3_column_int64(st, 4));
                c.usage.completion_tokens = static_cast<std::uint32_t>(sqlite3_column_int64(st, 5));
                c.cost_usd = sqlite3_column_double(st, 6);
                out = std::move(c);
                rc = SQLITE_DONE;
            }
        }
        sqlite3_finalize(st);
        note(rc == SQLITE_DONE, "read");
        return out;
    }

    /// @brief Stores `c` under `key` (replacing an older answer); a failure is counted, not raised.
    void put(std::string const& key, Completion const& c, clock::time_point now = clock::now()) {
        std::lock_guard lock(mutex_);
        if (!db_) return;
        sqlite3_stmt* st = nullptr;
        int rc = sqlite3_prepare_v2(db_,
                                    "INSERT OR REPLACE INTO llm_cache(hash, response, label, model, finish_reason, "
                                    "prompt_tokens, completion_tokens, cost_usd, created_at) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                                    -1, &st, nullptr);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, c.text.data(), static_cast<int>(c.text.size()), SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 3, c.label.data(), static_cast<int>(c.label.size()), SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 4, c.model.data(), static_cast<int>(c.model.size()), SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 5, c.finish_reason.data(), static_cast<int>(c.finish_reason.size()), SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 6, c.usage.prompt_tokens);
            sqlite3_bind_int64(st, 7, c.usage.completion_tokens);
            sqlite3_bind_double(st, 8, c.cost_usd);
            sqlite3_bind_int64(st, 9, unix_seconds(now));
            rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        note(rc == SQLITE_DONE, "write");
        if (rc == SQLITE_DONE && cfg_.purge_every && ++puts_ % cfg_.purge_every == 0) purge_locked(now);
    }

    /// @brief Deletes expired rows now.
    void purge(clock::time_point now = clock::now()) {
        std::lock_guard lock(mutex_);
        purge_locked(now);
    }

    /// @brief Failed operations so far (each a miss or a lost write).
    std::uint64_t errors() const {
        std::lock_guard lock(mutex_);
        return episodes_ ? episodes_->errors() : 0;
    }

private:
    static std::int64_t unix_seconds(clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    }
    static std::string column_text(sqlite3_stmt* st, int i) {
        auto const* p = reinterpret_cast<char const*>(sqlite3_column_text(st, i));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, i))) : std::string();
    }

    void purge_locked(clock::time_point now) {
        if (!db_) return;
        sqlite3_stmt* st = nullptr;
        int rc = sqlite3_prepare_v2(db_, "DELETE FROM llm_cache WHERE created_at <= ?1", -1, &st, nullptr);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, unix_seconds(now) - static_cast<std::int64_t>(cfg_.ttl.count()));
            rc = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        note(rc == SQLITE_DONE, "purge");
    }

    // Counts failures; logs once when an episode of failures starts and once when it ends.
    void note(bool ok, char const* what) {
        if (ok)
            episodes_->succeeded(detail::Episodes::clock::now());  // operations are serialised: none is stale
        else
            episodes_->failed(what, db_ ? sqlite3_errmsg(db_) : "closed");
    }

    void close_locked() {
        if (db_) sqlite3_close_v2(db_);
        db_ = nullptr;
    }

    mutable std::mutex mutex_;
    sqlite3* db_ = nullptr;
    SqliteCacheConfig cfg_;
    std::string path_;
    std::unique_ptr<detail::Episodes> episodes_;
    std::uint64_t puts_ = 0;
};

} // namespace cascade
