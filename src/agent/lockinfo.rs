//! Who holds the writer lock, for the status page: MariaDB knows the connection that holds a
//! named lock (`IS_USED_LOCK`) and where that connection comes from (`PROCESSLIST`), so a
//! standby can name the leader's host without any agent-to-agent protocol.

use mysql_async::prelude::Queryable;
use mysql_async::Opts;

/// The holder of `lock` as a phrase (`MariaDB connection 42 from 10.0.0.5:51234`), or None
/// when nobody holds it. One short connection; errors are the database's, for the page.
pub async fn holder(opts: Opts, lock: &str) -> Result<Option<String>, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts).await?;
    let id: Option<Option<u64>> = conn.exec_first("SELECT IS_USED_LOCK(?)", (lock,)).await?;
    let phrase = match id.flatten() {
        None => None,
        Some(id) => {
            // Seeing other sessions' hosts needs the PROCESS privilege; without it, the id.
            let host: Option<String> = conn
                .exec_first(
                    "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = ?",
                    (id,),
                )
                .await
                .unwrap_or(None);
            Some(match host {
                Some(h) => format!("MariaDB connection {id} from {h}"),
                None => format!("MariaDB connection {id}"),
            })
        }
    };
    let _ = conn.disconnect().await;
    Ok(phrase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::testdb::TestDb;

    #[tokio::test]
    async fn names_the_connection_that_holds_the_lock() {
        let db = TestDb::new("lockinfo").await;
        let lock = format!("isymphony-sync-test:{}", db.name);
        assert_eq!(holder(db.opts(), &lock).await.unwrap(), None);
        let mut other = mysql_async::Conn::new(db.opts()).await.unwrap();
        let got: Option<i64> = other
            .exec_first("SELECT GET_LOCK(?, 0)", (lock.as_str(),))
            .await
            .unwrap();
        assert_eq!(got, Some(1));
        let id: Option<u64> = other
            .exec_first("SELECT CONNECTION_ID()", ())
            .await
            .unwrap();
        let h = holder(db.opts(), &lock).await.unwrap().unwrap();
        assert!(
            h.starts_with(&format!("MariaDB connection {} from ", id.unwrap())),
            "{h}"
        );
        other.disconnect().await.unwrap();
        // Released with the connection.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(holder(db.opts(), &lock).await.unwrap(), None);
    }
}
