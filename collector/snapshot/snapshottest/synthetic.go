// Package snapshottest makes snapshots for tests and benchmarks, straight from a
// simulator inventory, without HTTP or JSON.
package snapshottest

import (
	"time"

	"github.com/certview-exporter/certview_exporter/certview"
	"github.com/certview-exporter/certview_exporter/certview/certviewtest"
	"github.com/certview-exporter/certview_exporter/collector/snapshot"
)

// Synthetic builds the snapshot of a simulator inventory of nc certificates and
// ni instances directly from its records, without HTTP or JSON, for benchmarks.
func Synthetic(nc, ni int, now time.Time) *snapshot.Snapshot {
	inv := certviewtest.Inventory{Seed: 42, Certificates: nc, Instances: ni, Now: now}
	b := snapshot.NewBuilder(snapshot.Options{Thresholds: snapshot.Thresholds{WeakRSABits: 2048, WeakECBits: 224}})
	certs := make([]certview.Certificate, 0, 200)
	for i := 0; i < nc; i++ {
		r := inv.Certificate(i)
		certs = append(certs, certview.Certificate{
			ID: r.ID, CertHash: r.CertHash, KeySize: r.KeySize, SerialNumber: r.SerialNumber,
			ValidFrom: certview.Timestamp{Time: time.UnixMilli(r.ValidFrom)}, ValidTo: certview.Timestamp{Time: time.UnixMilli(r.ValidTo)},
			SignatureAlgorithm: r.SignatureAlgorithm, PublicKeyAlgorithm: r.PublicKeyAlgorithm, SelfSigned: r.SelfSigned, Type: r.Type,
			Subject: certview.Name{Name: r.Subject.Name, Organization: r.Subject.Organization}, Issuer: certview.Name{Name: r.Issuer.Name},
			RootIssuer: certview.Name{Name: r.RootIssuer.Name}, IssuerCategory: r.IssuerCategory, InstanceCount: r.InstanceCount,
		})
		if len(certs) == cap(certs) || i == nc-1 {
			b.AddCertificates(certs)
			certs = certs[:0]
		}
	}
	ins := make([]certview.Instance, 0, 200)
	for j := 0; j < ni; j++ {
		r := inv.Instance(j)
		in := certview.Instance{ID: r.ID, Port: r.Port, Protocol: r.Protocol, Service: r.Service, Grade: r.Grade,
			Asset:       certview.InstanceAsset{ID: r.Asset.ID, Name: r.Asset.Name, PrimaryIP: r.Asset.PrimaryIP},
			Certificate: certview.InstanceCertificate{CertHash: r.Certificate.CertHash}}
		if g := r.GradeSummary; g != nil {
			in.GradeSummary.Grade = g.Grade
			for k, v := range []int{g.CertificateScore, g.ProtocolSupportScore, g.KeyExchangeScore, g.CipherStrengthScore} {
				*[]*certview.OptFloat{&in.GradeSummary.CertificateScore, &in.GradeSummary.ProtocolSupportScore,
					&in.GradeSummary.KeyExchangeScore, &in.GradeSummary.CipherStrengthScore}[k] = certview.OptFloat{Value: float64(v), Valid: true}
			}
		}
		ins = append(ins, in)
		if len(ins) == cap(ins) || j == ni-1 {
			b.AddInstances(ins)
			ins = ins[:0]
		}
	}
	return b.Build(now, now, time.Minute)
}
