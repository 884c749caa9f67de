//! Pages in a real headless Chromium (Debian's `chromium` over chromedriver): the status page
//! as an administrator sees it, and attacker pages posting to the agent.

mod attacker_pages;
mod explain_page;
mod status_page;
