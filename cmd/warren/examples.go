package main

// examples holds the Examples section of every command's help, by command
// path. A test checks that no command is without one.
var examples = map[string]string{
	"warren": `  warren --repo /tmp/a daemon --init-profile test &
  warren --repo /tmp/a wait
  warren --repo /tmp/a id`,
	"warren init": `  warren --repo /tmp/a init --profile test
  warren init                      # ~/.warren, default profile`,
	"warren daemon": `  warren --repo /tmp/a daemon --init-profile test
  warren daemon --log-level debug --log-format json`,
	"warren wait": `  warren --repo /tmp/a daemon --init-profile test &
  warren --repo /tmp/a wait && warren --repo /tmp/a id
  warren wait --timeout 5s`,
	"warren shutdown": `  warren --repo /tmp/a shutdown   # stop the daemon started with 'warren --repo /tmp/a daemon &'
  warren shutdown --timeout 2m     # a daemon with many tunnels to save
  warren shutdown --wait=false     # ask, and do not wait for it to exit`,
	"warren id": `  warren id
  warren id --json | jq -r '.addrs[0]'`,
	"warren peers": `  warren peers
  warren peers --wide
  warren peers --json | jq -r '.[].id'`,
	"warren connect": `  warren connect /ip4/127.0.0.1/tcp/4101/p2p/12D3KooW...
  warren connect 12D3KooW...       # found through the DHT`,
	"warren disconnect": `  warren disconnect 12D3KooW...`,
	"warren ping": `  warren ping 12D3KooW...
  warren ping -n 10 --json 12D3KooW...`,
	"warren webui": `  xdg-open "$(warren webui)"      # the dashboard of the daemon on ~/.warren
  warren --repo /srv/warren webui --json`,
	"warren status": `  warren status                    # reachable? through which relay? direct or relayed peers
  warren status --json | jq -r .reachability`,
	"warren version": `  warren version
  warren version --json`,
	"warren send": `  warren send 12D3KooW... chat "hello"
  echo hello | warren send 12D3KooW... chat
  seq 1000 | warren send --lines 12D3KooW... numbers`,
	"warren recv": `  warren recv chat
  warren recv chat -n 1 --raw > message.bin
  warren recv chat --json | jq -r .text`,
	"warren request": `  warren request 12D3KooW... echo "ping"
  warren request --timeout 2s --json 12D3KooW... date ""`,
	"warren respond": `  warren respond echo --echo
  warren respond date --exec date
  warren respond upper --exec 'tr a-z A-Z' -n 1`,
	"warren msg": `  warren msg stats`,
	"warren msg stats": `  warren msg stats
  warren msg stats --json | jq '.types'`,
	"warren pub": `  warren pub news "hello everyone"
  tail -f log.txt | warren pub --lines logs
  warren pub --timeout 30s news "wait longer for a first subscriber"`,
	"warren sub": `  warren sub news
  warren sub news -n 1 --raw > message.bin
  warren sub news --json | jq -r .text`,
	"warren topics": `  warren topics
  warren topics --json | jq -r '.[].name'`,
	"warren topics leave": `  warren topics leave newz`,
	"warren tunnel": `  warren tunnel listen /x/ssh /ip4/127.0.0.1/tcp/22
  warren tunnel forward /x/ssh /ip4/127.0.0.1/tcp/2222 12D3KooW...
  warren tunnel ls`,
	"warren tunnel listen": `  warren tunnel listen /x/ssh /ip4/127.0.0.1/tcp/22
  warren tunnel listen /x/web /ip4/127.0.0.1/tcp/8080 --allow 12D3KooW...
  warren tunnel listen /x/dns /ip4/127.0.0.1/udp/53 --temp
  warren tunnel listen /x/app /unix/run/app.sock`,
	"warren tunnel forward": `  warren tunnel forward /x/ssh /ip4/127.0.0.1/tcp/2222 12D3KooW...
  warren tunnel forward /x/web /ip4/127.0.0.1/tcp/0 12D3KooW... --json | jq -r .listen_address`,
	"warren tunnel ls": `  warren tunnel ls
  warren tunnel ls --kind forward --wide
  warren tunnel ls --json | jq '.[] | {id, streams_failed, last_error}'`,
	"warren tunnel close": `  warren tunnel close 3             # the id 'warren tunnel ls' shows
  warren tunnel close --protocol /x/ssh
  warren tunnel close --all`,
	"warren tunnel streams": `  warren tunnel streams
  warren tunnel streams --protocol /x/ssh --wide`,
	"warren tunnel streams close": `  warren tunnel streams close 7
  warren tunnel streams close --all`,
	"warren help": `  warren help tunnel forward`,
	"warren completion": `  source <(warren completion bash)
  warren completion zsh > "${fpath[1]}/_warren"
  warren completion fish > ~/.config/fish/completions/warren.fish`,
	"warren completion bash": `  source <(warren completion bash)
  warren completion bash > /etc/bash_completion.d/warren`,
	"warren completion zsh":        `  warren completion zsh > "${fpath[1]}/_warren"`,
	"warren completion fish":       `  warren completion fish > ~/.config/fish/completions/warren.fish`,
	"warren completion powershell": `  warren completion powershell | Out-String | Invoke-Expression`,
}
