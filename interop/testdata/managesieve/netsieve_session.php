<?php
// One ManageSieve session through PEAR's Net_Sieve, the library Roundcube's
// managesieve plugin uses, called the way Roundcube calls it.
//
// Run by interop/managesieve_test.go: $argv[1] is a JSON file with host,
// port, user, password, wrong_password, good, broken, uni_name, cafile and
// usetls (Roundcube's managesieve_usetls).
// Every step's result goes to stdout as one JSON object; the Go test
// asserts on it, this script asserts nothing itself.
error_reporting(E_ALL & ~E_DEPRECATED & ~E_STRICT);
require_once 'Net/Sieve.php';

$cfg = json_decode(file_get_contents($argv[1]), true);
$out = array();

function failed($res)
{
    return is_a($res, 'PEAR_Error');
}

function result($res)
{
    return failed($res)
        ? array('ok' => false, 'error' => $res->getMessage())
        : array('ok' => true, 'error' => '');
}

function listing($sieve)
{
    $active = null;
    $list = $sieve->listScripts($active);
    if (failed($list)) {
        return null;
    }
    sort($list);
    return array('active' => $active, 'scripts' => $list);
}

// Roundcube sends scripts with CRLF line endings.
$good = str_replace("\n", "\r\n", $cfg['good']);
$broken = str_replace("\n", "\r\n", $cfg['broken']);

// STARTTLS with certificate verification against the test CA.
$tls = array('ssl' => array(
    'verify_peer' => true,
    'verify_peer_name' => true,
    'peer_name' => 'localhost',
    'cafile' => $cfg['cafile'],
));

$sieve = new Net_Sieve();
$res = $sieve->connect($cfg['host'], $cfg['port'], $tls, $cfg['usetls']);
$out['connect'] = result($res);
$meta = stream_get_meta_data($sieve->_sock->fp);
$out['tls'] = isset($meta['crypto']['protocol']) ? $meta['crypto']['protocol'] : '';
// Roundcube's managesieve_auth_type = 'LOGIN'.
$res = failed($res) ? $res : $sieve->login($cfg['user'], $cfg['password'], 'LOGIN');
$out['login'] = !failed($res);
$out['login_error'] = failed($res) ? $res->getMessage() : '';
if ($out['login']) {
    $out['list0'] = listing($sieve);
    $out['put_main'] = !failed($sieve->installScript('main', $good));
    // Net_Sieve sends a non-ASCII name as a literal.
    $out['put_uni'] = !failed($sieve->installScript($cfg['uni_name'], $good));
    // Net_Sieve has no CHECKSCRIPT; Roundcube shows the PUTSCRIPT error.
    $out['check_broken'] = result($sieve->_doCmd(sprintf("CHECKSCRIPT {%d+}\r\n%s", strlen($broken), $broken)));
    $out['put_broken'] = result($sieve->installScript('broken', $broken));
    $out['activate'] = !failed($sieve->setActive('main'));
    $out['list1'] = listing($sieve);
    $res = $sieve->getScript('main');
    $out['get_main'] = failed($res) ? null : $res;
    $out['havespace'] = !failed($sieve->haveSpace('next', 1000));
    // Net_Sieve has no rename; the raw command goes through its parser.
    $out['rename'] = !failed($sieve->_doCmd('RENAMESCRIPT "main" "renamed"'));
    $out['list2'] = listing($sieve);
    $out['delete_active'] = result($sieve->removeScript('renamed'));
    $out['deactivate'] = !failed($sieve->setActive(''));
    $out['delete'] = !failed($sieve->removeScript('renamed'));
    $out['delete_uni'] = !failed($sieve->removeScript($cfg['uni_name']));
    $out['list3'] = listing($sieve);
    $sieve->disconnect();
}

// A wrong password, through SASL PLAIN (Net_Sieve's choice).
$sieve = new Net_Sieve();
$res = $sieve->connect($cfg['host'], $cfg['port'], $tls, $cfg['usetls']);
if (!failed($res)) {
    $res = $sieve->login($cfg['user'], $cfg['wrong_password']);
}
$out['bad_login'] = result($res);

echo json_encode($out), "\n";
