#pragma once
// Reports kept in SQLite under an id nobody can guess (128 random bits), for the signed report links.

#include <openssl/rand.h>
#include <sqlite3.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

namespace audit {

struct StoredReport {
    std::string id;
    std::string lang;
    int score = 0;
    std::string provider;
    double cost_usd = 0.0;
    std::string markdown;
    std::int64_t created_unix = 0;
};

/// @brief The report table. Thread-safe (one connection under a mutex: a report is written once and read
/// a few times).
class ReportStore {
public:
    explicit ReportStore(std::string const& path) {
        if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) != SQLITE_OK) {
            std::string err = "cannot open the report database '" + path + "': " + (db_ ? sqlite3_errmsg(db_) : "out of memory");
            sqlite3_close(db_);
            throw std::runtime_error(err);
        }
        sqlite3_busy_timeout(db_, 2000);
        char* msg = nullptr;
        if (sqlite3_exec(db_,
                         "PRAGMA journal_mode=WAL;"
                         "CREATE TABLE IF NOT EXISTS audit_reports (id TEXT PRIMARY KEY, lang TEXT NOT NULL, score INTEGER NOT NULL,"
                         " provider TEXT NOT NULL, cost_usd REAL NOT NULL, markdown TEXT NOT NULL, created INTEGER NOT NULL);",
                         nullptr, nullptr, &msg) != SQLITE_OK) {
            std::string err = "the report database '" + path + "' is not usable: " + (msg ? msg : sqlite3_errmsg(db_));
            sqlite3_free(msg);
            sqlite3_close(db_);
            throw std::runtime_error(err);
        }
    }
    ReportStore(ReportStore const&) = delete;
    ReportStore& operator=(ReportStore const&) = delete;
    ~ReportStore() { sqlite3_close(db_); }

    /// @brief A fresh id: 128 bits from OpenSSL's generator, as 32 hex digits.
    static std::string new_id() {
        unsigned char bytes[16];
        if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("no random bytes for a report id");
        static constexpr char hex[] = "0123456789abcdef";
        std::string id;
        for (unsigned char b : bytes) {
            id += hex[b >> 4];
            id += hex[b & 15];
        }
        return id;
    }

    /// @brief Stores `r` (its id set by the caller); false when the database refused it.
    bool put(StoredReport const& r) {
        std::lock_guard lock(mutex_);
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db_, "INSERT INTO audit_reports VALUES (?,?,?,?,?,?,?)", -1, &st, nullptr) != SQLITE_OK) return false;
        sqlite3_bind_text(st, 1, r.id.data(), static_cast<int>(r.id.size()), SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, r.lang.data(), static_cast<int>(r.lang.size()), SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 3, r.score);
        sqlite3_bind_text(st, 4, r.provider.data(), static_cast<int>(r.provider.size()), SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 5, r.cost_usd);
        sqlite3_bind_text(st, 6, r.markdown.data(), static_cast<int>(r.markdown.size()), SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 7, r.created_unix);
        bool const ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_finalize(st);
        return ok;
    }

    std::optional<StoredReport> get(std::string const& id) {
        std::lock_guard lock(mutex_);
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db_, "SELECT id, lang, score, provider, cost_usd, markdown, created FROM audit_reports WHERE id = ?", -1, &st,
                               nullptr) != SQLITE_OK)
            return std::nullopt;
        sqlite3_bind_text(st, 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
        std::optional<StoredReport> out;
        if (sqlite3_step(st) == SQLITE_ROW) {
            auto text = [&](int col) {
                auto const* p = reinterpret_cast<char const*>(sqlite3_column_text(st, col));
                return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(st, col))) : std::string();
            };
            out = StoredReport{text(0), text(1), sqlite3_column_int(st, 2), text(3), sqlite3_column_double(st, 4), text(5), sqlite3_column_int64(st, 6)};
        }
        sqlite3_finalize(st);
        return out;
    }

private:
    sqlite3* db_ = nullptr;
    std::mutex mutex_;
};

} // namespace audit
