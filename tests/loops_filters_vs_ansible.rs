//! The `with_<lookup>` loops (nested, together, indexed_items, sequence, subelements, fileglob),
//! the lookups (varnames, first_found, fileglob, vars, pipe, lines) and the filters knockplay added
//! for real playbooks (comment, math and combinatorics, human_readable, digests, to_uuid,
//! urlsplit, dates, json_query, path filters, FQCN names), run on the controller (the implicit
//! localhost) by knockplay and by ansible-playbook: the same items and the same text.

use std::path::PathBuf;
use std::process::Command;

const PLAYBOOK: &str = r#"
- hosts: localhost
  gather_facts: false
  vars:
    note: Ansible managed
    app_port: 80
    app_name: web
    users:
      - {name: alice, keys: [k1, k2]}
      - {name: bob, keys: [k3]}
  tasks:
    - debug: {msg: "{{ note | comment }}"}
    - debug: {msg: "{{ 'a\nb' | comment('cblock') }}"}
    - debug: {msg: "{{ 'x' | comment('xml') }}"}
    - debug: {msg: "{{ 'x\n\ny' | comment(decoration='; ', prefix_count=2) }}"}
    - debug: {msg: "{{ 'x' | comment('erlang', beginning='BEGIN', end='END') }}"}
    - debug: {msg: "{{ item[0] }}-{{ item[1] }}"}
      with_nested: [[a, b], [1, 2]]
    - debug: {msg: "{{ item }}"}
      with_together: [[a, b, c], [1, 2]]
    - debug: {msg: "{{ item.0 }}={{ item.1 }}"}
      with_indexed_items: [x, y]
    - debug: {msg: "{{ item }}"}
      with_sequence: start=1 end=9 stride=4 format=web%02d
    - debug: {msg: "{{ item }}"}
      with_sequence: count=3
    - debug: {msg: "{{ item.0.name }} {{ item.1 }}"}
      with_subelements: ["{{ users }}", keys]
    - debug: {msg: "{{ lookup('varnames', '^app_') }}"}
    - debug: {msg: "{{ query('varnames', 'app_n.*', 'user') }}"}
    - debug: {msg: "{{ lookup('first_found', ['nope.conf', 'conf.d/b.conf']) | basename }}"}
    - debug: {msg: "{{ lookup('first_found', {'files': ['x.conf', 'a.conf'], 'paths': ['conf.d']}) | basename }}"}
    - debug: {msg: "{{ query('first_found', {'files': ['none.conf'], 'skip': true}) }}"}
    - debug: {msg: "{{ query('fileglob', 'conf.d/*.conf') | map('basename') | sort }}"}
    - debug: {msg: "{{ lookup('vars', 'app_' + 'name') }}"}
    - debug: {msg: "{{ lookup('template', 'motd.j2') }}"}
    - debug: {msg: "{{ lookup('vars', 'nope', default='dflt') }}"}
    - debug: {msg: "{{ lookup('pipe', 'echo hi; ls files/conf.d | wc -l') }}"}
    - debug: {msg: "{{ query('lines', 'printf \"a\\nb\\n\"') | to_json }}"}
    - debug: {msg: "{{ [1, 2, 3] | permutations(2) | list | to_json }}"}
    - debug: {msg: "{{ [1, 2, 3] | combinations(2) | list | to_json }}"}
    - debug: {msg: "{{ [1, 2] | product(['a', 'b']) | list | to_json }}"}
    - debug: {msg: "{{ [1, 2, 3] | zip(['a', 'b']) | list | to_json }}"}
    - debug: {msg: "{{ [1, 2] | zip_longest(['a'], fillvalue='x') | list | to_json }}"}
    - debug: {msg: "{{ 8 | log(2) }} {{ 2 | pow(10) }} {{ 81 | root }}"}
    - debug: {msg: "{{ 1024 | human_readable }} {{ 1048576 | human_readable(unit='K') }} {{ 123 | human_readable }} {{ 5000000 | human_readable(isbits=True) }}"}
    - debug: {msg: "{{ '1 KB' | human_to_bytes }} {{ '10M' | human_to_bytes }} {{ '2' | human_to_bytes('K') }}"}
    - debug: {msg: "{{ 'a b  c' | split | to_json }} {{ 'a,b' | split(',') | to_json }}"}
    - debug: {msg: "{{ 'a' | hash }} {{ 'a' | hash('md5') }} {{ 'a' | checksum }} {{ 'a' | md5 }} {{ 'a' | hash('sha256') }}"}
    - debug: {msg: "{{ 'web1' | to_uuid }}"}
    - debug: {msg: "{{ 'https://user:pw@Example.com:8443/a/b?x=1#f' | urlsplit | to_json(sort_keys=True) }}"}
    - debug: {msg: "{{ 'https://example.com/x' | urlsplit('hostname') }} {{ 'http://h:81/' | urlsplit('port') }}"}
    - debug: {msg: "{{ ('2024-02-29 13:04:05' | to_datetime).strftime('%A %d %B %Y %j') }} {{ ('2024-02-29 13:04:05' | to_datetime).year }}"}
    - debug: {msg: "{{ ('05/03/21' | to_datetime('%d/%m/%y')).strftime('%Y-%m-%d') }}"}
    - debug: {msg: "{{ '%Y-%m-%d %H:%M:%S' | strftime(1709211845) }}"}
    - debug: {msg: "{{ {'d': [{'n': 'a', 'p': 1}, {'n': 'b', 'p': 2}]} | json_query(\"d[?n=='b'].p\") | to_json }}"}
    - debug: {msg: "{{ {'d': [{'n': 'a'}, {'n': 'b'}]} | community.general.json_query('d[*].n') | to_json }}"}
    - debug: {msg: "{{ [1] | ansible.builtin.to_json }} {{ 'abc' is ansible.builtin.match('a') }}"}
    - debug: {msg: "{{ '/a/b/c' | relpath('/a/x') }} {{ '~/x' | expanduser }} {{ '/no/such/../y' | realpath }}"}
    - debug: {msg: "{{ 'a: 1\n---\nb: 2\n' | from_yaml_all | to_json }}"}
    - debug: {msg: "{{ '/a/./b//c/../d' | normpath }} {{ ['/usr/lib', '/usr/local/lib'] | commonpath }} {{ 'a%20b+c%2Fd' | urldecode }} {{ 'C:\\\\x\\\\f.txt' | win_basename }} {{ 'C:\\\\x\\\\f.txt' | win_dirname }} {{ [{'n': 'a', 'v': 1}, {'n': 'b', 'v': 2}] | rekey_on_member('n') | to_json }}"}
    - debug: {msg: "{{ item | basename }}"}
      with_fileglob: ["conf.d/*.conf"]
"#;

fn msgs(out: std::process::Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.trim_start().starts_with("\"msg\""))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn lookup_loops_and_comment_match_ansible() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    std::fs::create_dir_all(dir.join("files/conf.d")).unwrap();
    for f in ["a.conf", "b.conf", "c.txt"] {
        std::fs::write(dir.join("files/conf.d").join(f), "").unwrap();
    }
    std::fs::write(dir.join("site.yml"), PLAYBOOK).unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("templates/motd.j2"),
        "{{ app_name }}:{{ app_port }}\n{% for u in users %}{{ u.name }} {% endfor %}\n",
    )
    .unwrap();
    let venv = std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"));
    let mut kp = msgs(
        Command::new(env!("CARGO_BIN_EXE_knockplay"))
            .args(["run", "site.yml"])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .unwrap(),
    );
    let mut an = msgs(
        Command::new(venv.join("bin/ansible-playbook"))
            .args(["site.yml", "-i", "localhost,", "-c", "local"])
            .current_dir(dir)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_LOCAL_TEMP", dir.join(".tmp"))
            .output()
            .unwrap(),
    );
    assert_eq!(kp.len(), 58, "{kp:#?}");
    // fileglob's order is the directory's in Ansible; knockplay sorts.
    let n = kp.len();
    kp[n - 2..].sort();
    an[n - 2..].sort();
    assert_eq!(kp, an);
}

/// `password_hash` gives crypt(3)'s hashes: the same as `openssl passwd` for a given salt, and a
/// random 16-character salt without one.
#[test]
fn password_hash_matches_crypt() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("site.yml"),
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n\
         \x20   - debug: {msg: \"{{ 'secret' | password_hash('sha512', 'mysalt') }}\"}\n\
         \x20   - debug: {msg: \"{{ 'secret' | password_hash('sha256', 'abcdefgh') }}\"}\n\
         \x20   - debug: {msg: \"{{ ('secret' | password_hash('sha512')) is match('^[$]6[$][./0-9A-Za-z]{16}[$]') }}\"}\n",
    )
    .unwrap();
    let kp = msgs(
        Command::new(env!("CARGO_BIN_EXE_knockplay"))
            .args(["run", "site.yml"])
            .current_dir(d.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap(),
    );
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .arg("passwd")
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success());
        format!("\"msg\": \"{}\"", String::from_utf8_lossy(&o.stdout).trim())
    };
    assert_eq!(
        kp,
        vec![
            openssl(&["-6", "-salt", "mysalt", "secret"]),
            openssl(&["-5", "-salt", "abcdefgh", "secret"]),
            "\"msg\": true".to_string(),
        ]
    );
}
